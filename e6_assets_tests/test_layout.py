"""The data work (``e6_assets.core``) stands without Dagster: the Dagster layer depends on it, never
the other way round."""

import subprocess
import sys

# Imports every module of the core package in a fresh interpreter where importing Dagster (or any of
# its packages) fails, then lists what it imported.
_IMPORT_CORE_WITHOUT_DAGSTER = """
import importlib, pkgutil, sys

class NoDagster:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "dagster" or name.startswith("dagster_"):
            raise ImportError(f"the core package imported {name}")

sys.meta_path.insert(0, NoDagster())
import e6_assets.core
for module in pkgutil.walk_packages(e6_assets.core.__path__, "e6_assets.core."):
    importlib.import_module(module.name)
print("\\n".join(sorted(name for name in sys.modules if name.startswith("e6_assets"))))
"""


def test_every_core_module_imports_with_dagster_unavailable() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_CORE_WITHOUT_DAGSTER], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    imported = set(result.stdout.split())
    assert {"e6_assets.core.pipeline", "e6_assets.core.jsonl", "e6_assets.core.publish"} <= imported
    assert not any(name.startswith("e6_assets.defs") for name in imported)
