"""Output files of a command: checked before any work, written all or none.

A command that computes for a minute and then finds its ``--npy`` path unwritable has wasted
the minute; one that wrote its PNG before failing on the ``--npy`` leaves a half result that
looks like a whole one. So every output path is checked up front (suffix, not a folder, its
folder can be made and written), and :meth:`Outputs.writing` removes what was written when a
later write fails.
"""

import contextlib
import os
import tempfile
from pathlib import Path

from deepvis.errors import DeepvisError

IMAGE = "image"
NPY = "npy"
GIF = "gif"
CSV = "csv"
FOLDER = "folder"
HTML = "html"
SVG = "svg"
JSON = "json"

_SUFFIXES = {NPY: (".npy",), GIF: (".gif",), CSV: (".csv", ".txt"), HTML: (".html", ".htm"), SVG: (".svg",),
             JSON: (".json",)}


def _suffixes(kind: str) -> tuple[str, ...]:
    if kind == IMAGE:
        from deepvis.io.images import IMAGE_SUFFIXES

        return tuple(sorted(IMAGE_SUFFIXES))
    return _SUFFIXES.get(kind, ())


def check_writable_folder(folder: Path, shown: Path) -> None:
    """Raise a DeepvisError unless ``folder`` exists or can be made, and a file can be created
    in it. Folders made for the check are removed again."""
    made = []
    try:
        missing = []
        here = folder
        while not here.exists():
            missing.append(here)
            if here.parent == here:
                break
            here = here.parent
        if not here.is_dir():
            raise DeepvisError(f"cannot write {shown}: {here} is a file, not a folder")
        for part in reversed(missing):
            try:
                part.mkdir()
            except FileExistsError:
                continue  # made meanwhile by another process (two builds of one atlas): not ours to remove
            made.append(part)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".deepvis-write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise DeepvisError(f"cannot write {shown}: {exc.strerror or exc}") from None
    finally:
        for part in reversed(made):
            with contextlib.suppress(OSError):
                part.rmdir()


def check_output(path, kind: str, option: str = "--out") -> Path:
    """The output ``path`` of ``kind`` (IMAGE, NPY, GIF, CSV, HTML, SVG, JSON or FOLDER), checked; raises a
    DeepvisError naming the option for a path that cannot be written."""
    path = Path(path)
    if kind == FOLDER:
        if path.exists() and not path.is_dir():
            raise DeepvisError(f"{option} {path} is a file; it needs a folder")
        check_writable_folder(path, path)
        return path
    if path.is_dir():
        raise DeepvisError(f"{option} {path} is a folder; it needs a file name")
    suffixes = _suffixes(kind)
    if suffixes and path.suffix.lower() not in suffixes:
        raise DeepvisError(f"{option} {path}: unsupported suffix {path.suffix or '(none)'!r}; use "
                           f"{', '.join(suffixes)}")
    if path.exists() and not os.access(path, os.W_OK):
        raise DeepvisError(f"cannot write {path}: permission denied")
    check_writable_folder(path.parent if str(path.parent) else Path("."), path)
    return path


class Outputs:
    """The files a command will write: ``add`` checks each at once; ``writing()`` is the block
    that writes them and, if it fails, removes those it had written (files that existed
    before are left as they are now: they may have been overwritten, never deleted)."""

    def __init__(self):
        self._paths: list[Path] = []
        self._existed: set[Path] = set()

    def add(self, path, kind: str, option: str = "--out") -> Path | None:
        if path is None or path == "":
            return None
        checked = check_output(path, kind, option)
        self._paths.append(checked)
        if checked.exists():
            self._existed.add(checked)
        return checked

    @contextlib.contextmanager
    def writing(self):
        try:
            yield self
        except BaseException:
            for path in self._paths:
                if path not in self._existed:
                    with contextlib.suppress(OSError):
                        if path.is_dir():
                            import shutil

                            shutil.rmtree(path)
                        else:
                            path.unlink()
            raise
