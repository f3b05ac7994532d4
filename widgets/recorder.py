"""Recording the live window to MP4 or GIF."""

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from deepvis.errors import DeepvisError
from deepvis.images import write_video

MAX_FRAMES = 1800  # a minute at 30 fps; memory stays bounded on long sessions


def qimage_to_rgb(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return buffer[:, : w * 3].reshape(h, w, 3).copy()


class Recorder(QObject):
    finished = Signal(str, str)  # path, error ("" when written)

    def __init__(self, widget, fps: float = 10.0, parent=None):
        super().__init__(parent)
        self.widget = widget
        self.fps = fps
        self.frames: list[np.ndarray] = []
        self.path: Path | None = None
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._grab)

    @property
    def recording(self) -> bool:
        return self.timer.isActive()

    def start(self, path) -> None:
        path = Path(path)
        if path.suffix.lower() not in (".mp4", ".avi", ".gif"):
            raise DeepvisError(f"record to .mp4, .avi or .gif, not {path.suffix or 'no suffix'}")
        self.path, self.frames = path, []
        self.timer.start(int(1000 / self.fps))
        self._grab()

    def _grab(self) -> None:
        frame = qimage_to_rgb(self.widget.grab().toImage())
        # Encoders want one size and even dimensions.
        h, w = frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2
        if self.frames:
            h, w = self.frames[0].shape[:2]
        if frame.shape[0] < h or frame.shape[1] < w:
            frame = np.pad(frame, ((0, max(0, h - frame.shape[0])), (0, max(0, w - frame.shape[1])), (0, 0)))
        self.frames.append(np.ascontiguousarray(frame[:h, :w]))
        if len(self.frames) >= MAX_FRAMES:
            self.stop()

    def stop(self, wait: bool = False) -> threading.Thread | None:
        """Stop and write the file on a background thread; ``finished`` says how it went."""
        if not self.timer.isActive():
            return None
        self.timer.stop()
        frames, path = self.frames, self.path
        self.frames = []
        thread = threading.Thread(target=self._write, args=(path, frames), daemon=True)
        thread.start()
        if wait:
            thread.join()
        return thread

    def _write(self, path: Path, frames) -> None:
        try:
            if path.suffix.lower() == ".gif":
                from PIL import Image

                images = [Image.fromarray(f) for f in frames]
                images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / self.fps),
                               loop=0)
            else:
                write_video(path, frames, self.fps)
            self.finished.emit(str(path), "")
        except (OSError, DeepvisError, ValueError) as exc:
            self.finished.emit(str(path), str(exc))
