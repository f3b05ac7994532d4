"""The import contracts in pyproject.toml ([tool.importlinter]), checked by lint-imports.

lint-imports reads the package from disk, and deepvis is whole only once installed: widgets/,
models/ and resources/ become deepvis.widgets, deepvis.models and deepvis.resources through
setuptools' package-dir, which lint-imports does not know. Run from the checkout it would see
none of them, so neither the widgets nor the bundled nets would be checked. The test copies the
Python files into the layout the wheel has (from pyproject's own packages and package-dir) and
runs lint-imports there beside a copy of pyproject.toml.

Run as a script (``python tests/test_architecture.py``) it prints lint-imports' report.
"""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: import-linter depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def installed_layout(dest: Path) -> Path:
    """The .py files of every package in pyproject's [tool.setuptools], where the wheel puts them,
    and pyproject.toml itself (lint-imports reads its contracts from the working directory)."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    dirs = setuptools["package-dir"]
    sources = {}
    for package in setuptools["packages"]:
        base = max((d for d in dirs if package == d or package.startswith(d + ".")), key=len)
        sources[package] = ROOT / dirs[base] / package[len(base):].lstrip(".").replace(".", "/")
    # A package on disk that pyproject does not list would be missing from the wheel (and here).
    on_disk = {init.parent for tree in set(dirs.values()) for init in (ROOT / tree).rglob("__init__.py")}
    unlisted = sorted(str(p.relative_to(ROOT)) for p in on_disk - set(sources.values()))
    assert not unlisted, f"packages missing from pyproject's [tool.setuptools] packages: {unlisted}"
    for package, source in sources.items():
        target = dest.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            shutil.copyfile(module, target / module.name)
    shutil.copyfile(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    # lint-imports puts its working directory first on sys.path, so deepvis is the copy there.
    return subprocess.run([sys.executable, "-c", LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_import_contracts_are_kept(tmp_path):
    proc = lint_imports(installed_layout(tmp_path))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


# Groups of modules that import each other, directly or round a longer loop, counting imports
# made inside functions too (grimp reads every import statement): Tarjan's strongly connected
# components of the import graph, one group per line.
IMPORT_CYCLES = """
import sys
import grimp

graph = grimp.build_graph("deepvis", cache_dir=None)
edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
index, low, stack, on_stack, groups = {}, {}, [], set(), []

def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        group = []
        while not group or group[-1] != v:
            group.append(stack.pop())
            on_stack.discard(group[-1])
        if len(group) > 1:
            groups.append(sorted(group))

sys.setrecursionlimit(10_000)
for module in edges:
    if module not in index:
        visit(module)
print(len(edges))
for group in groups:
    print(" ".join(group))
"""


def test_no_two_modules_import_each_other(tmp_path):
    # A cycle makes both modules one unit: neither can be read, tested or moved alone, and the
    # import that closes it has to hide inside a function. Each file imports only downwards.
    proc = subprocess.run([sys.executable, "-c", IMPORT_CYCLES], cwd=installed_layout(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules, *cycles = proc.stdout.splitlines()
    assert int(modules) > 100  # the whole installed package was read (146 modules in December 2026)
    assert cycles == []


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        result = lint_imports(installed_layout(Path(tmp)))
    print(result.stdout + result.stderr, end="")
    sys.exit(result.returncode)
