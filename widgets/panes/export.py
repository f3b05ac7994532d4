"""The tabs' Save and Export buttons: a save dialog, and a write whose outcome is one line on the
session's message signal ("saved PATH", or "could not write PATH: why"), never an exception."""

from collections.abc import Callable

import numpy as np
from PySide6.QtWidgets import QFileDialog, QWidget

from deepvis.errors import DeepvisError
from deepvis.io.images import write_image


def save_dialog(parent: QWidget, title: str, name: str, filters: str, save: Callable[[str], object]) -> None:
    """Ask where to save (``name`` proposed), then ``save(path)``; nothing when cancelled."""
    path, _ = QFileDialog.getSaveFileName(parent, title, name, filters)
    if path:
        save(path)


def write_or_say(session, path, write: Callable[[], object], verb: str = "write") -> bool:
    """``write()``, then "saved PATH"; an OSError or DeepvisError is said ("could not VERB PATH:
    why") rather than raised. True when written."""
    try:
        write()
    except (OSError, DeepvisError) as exc:
        session.message.emit(f"could not {verb} {path}: {exc}")
        return False
    session.message.emit(f"saved {path}")
    return True


def save_picture_or_array(session, path, picture: np.ndarray | None, array: Callable[[], np.ndarray | None],
                          nothing: str) -> bool:
    """The picture as shown, or with a .npy name the array behind it (``array()``, asked only then;
    ``nothing`` says why there is none when it gives None)."""
    def write() -> None:
        if str(path).lower().endswith(".npy"):
            data = array()
            if data is None:
                raise DeepvisError(nothing)
            np.save(path, data)
        else:
            if picture is None:
                raise DeepvisError("no picture to save")
            write_image(path, picture)

    return write_or_say(session, path, write, verb="save")
