"""Celery settings of the workers.

``celery -A dagster_celery.app worker`` imports a module of this name when it is on ``PYTHONPATH``
(``deploy/start worker`` puts this folder there). The launcher side of the same settings is the
``run_launcher`` block of ``dagster.yaml``.
"""

import os

if not os.environ.get("E6_CELERY_BROKER_URL"):
    raise SystemExit("E6_CELERY_BROKER_URL is not set: the Redis broker, e.g. redis://10.0.0.5:6379/0")

broker_url = os.environ["E6_CELERY_BROKER_URL"]
result_backend = broker_url  # as in dagster.yaml: the daemon asks it for a run's task state
result_extended = True  # each task's result names the worker that ran it
# A worker acknowledges a run only when it is done with it, and reserves no other run meanwhile: a
# run waiting in the broker goes to the next free worker, not to a busy one that fetched it early.
task_acks_late = True
worker_prefetch_multiplier = 1
