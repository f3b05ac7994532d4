"""The engine (deepvis/) never imports Qt, pyqtgraph, vispy, OpenGL or deepvis.widgets.

tests/test_architecture.py checks the same rule on the import statements (lint-imports, the
first contract in pyproject.toml). This checks it at run time, the napari way: a fresh
interpreter in which those imports fail imports every engine module and runs a headless command
end to end, so imports that lint-imports cannot see (made inside third-party packages, or by
name at run time) are caught too.
"""

import pkgutil
import subprocess
import sys
from pathlib import Path

import deepvis
import deepvis.models

BLOCKED = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "vispy", "OpenGL", "deepvis.widgets")

SCRIPT = f"""
import importlib, sys
BLOCKED = {BLOCKED!r}

class Block:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"the engine must not import {{name}}")
        return None

sys.meta_path.insert(0, Block())
for name in sys.argv[1:]:
    importlib.import_module(name)
from deepvis.cli import main
code = main(["info", "--model", "digits_cnn", "--json"])
leaked = [m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED)]
assert code == 0, code
assert not leaked, leaked
print("ENGINE-OK")
"""


def engine_modules() -> list[str]:
    """Every module under deepvis/ (its capability packages included) and of the bundled nets,
    deepvis.models (models/); deepvis.widgets (widgets/) is the one part that may use Qt."""
    root = Path(deepvis.__file__).parent
    engine = [m.name for m in pkgutil.walk_packages([str(root)], prefix="deepvis.") if m.name != "deepvis.__main__"]
    nets = [m.name for m in pkgutil.walk_packages(deepvis.models.__path__, prefix="deepvis.models.")]
    return [*engine, "deepvis.models", *nets]


def test_engine_imports_and_runs_without_qt():
    modules = engine_modules()
    assert {"deepvis.core.loading", "deepvis.live.pipeline", "deepvis.core.probe", "deepvis.cli",
            "deepvis.models.pointnet"} <= set(modules)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *modules], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ENGINE-OK" in proc.stdout
