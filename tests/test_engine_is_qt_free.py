"""The engine (deepvis/) never imports Qt, pyqtgraph, vispy or deepvis.widgets.

Checked the napari way: a fresh interpreter in which those imports fail imports every engine
module and runs a headless command end to end.
"""

import pkgutil
import subprocess
import sys
from pathlib import Path

import deepvis

BLOCKED = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "vispy", "deepvis.widgets")

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
    root = Path(deepvis.__file__).parent
    return [f"deepvis.{m.name}" for m in pkgutil.iter_modules([str(root)]) if m.name != "__main__"]


def test_engine_imports_and_runs_without_qt():
    modules = engine_modules()
    assert {"deepvis.core.loading", "deepvis.live.pipeline", "deepvis.core.probe", "deepvis.cli"} <= set(modules)
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *modules], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ENGINE-OK" in proc.stdout
