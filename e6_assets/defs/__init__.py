"""The Dagster definitions, by domain (``captions``, ``merge``, ``publish``, ``recaption``,
``automation``), and what the domains share: the ``SHARDS`` partitions, the resources, the per-shard
step settings, the recorded source versions, the jobs and the build's asset lists.
``e6_assets.definitions`` assembles them into the code location.
"""
