"""Releases known to break deepvis are excluded by pyproject, and none of them is installed.

PySide6 6.12.0 on Python 3.11 aborts a live window after 4-7 minutes ("Fatal Python error:
none_dealloc", a None refcount bug in its bindings). A soak of minutes found it; this check
keeps it out in no time, and ``deepvis bench soak`` is the long run for the next such release.
"""

import sys
from importlib.metadata import version
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
from packaging.requirements import Requirement  # noqa: E402

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
BROKEN = {"pyside6-essentials": [("3.11", "6.12.0")]}  # package -> (python, release) pairs


def _requirements(package: str, python: str) -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    found = [Requirement(text) for text in project["dependencies"]]
    return [r for r in found if r.name.lower() == package
            and (r.marker is None or r.marker.evaluate({"python_version": python, "python_full_version": python + ".0"}))]


@pytest.mark.parametrize("package,python,release", [(p, py, r) for p, pairs in BROKEN.items() for py, r in pairs])
def test_pyproject_excludes_the_broken_release(package, python, release):
    requirements = _requirements(package, python)
    assert requirements, f"pyproject.toml no longer asks for {package} on Python {python}"
    assert not any(r.specifier.contains(release) for r in requirements), (python, [str(r) for r in requirements])


def test_the_installed_pyside6_is_not_a_broken_release():
    installed = version("PySide6-Essentials")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    broken = {r for py, r in BROKEN["pyside6-essentials"] if py == python}
    assert installed not in broken, f"PySide6-Essentials {installed} aborts live windows on Python {python}"
    assert all(r.specifier.contains(installed) for r in _requirements("pyside6-essentials", python))
