"""Recording the live window to MP4 or GIF.

MP4/AVI frames go to the encoder as they are grabbed, so a long recording costs disk, not
memory. GIF needs every frame at the end (palette), so it is capped at GIF_MAX_BYTES.
"""

import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

from deepvis.errors import DeepvisError
from deepvis.io.images import quiet_cv2

GIF_MAX_BYTES = 512 * 1024 * 1024


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
        self.frames: list[np.ndarray] = []  # GIF only
        self.count = 0
        self.path: Path | None = None
        self._writer = None
        self._size: tuple[int, int] | None = None
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._grab)

    @property
    def recording(self) -> bool:
        return self.timer.isActive()

    def start(self, path) -> None:
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".mp4", ".avi", ".gif"):
            raise DeepvisError(f"record to .mp4, .avi or .gif, not {suffix or 'no suffix'}")
        self.path, self.frames, self.count, self._writer, self._size = path, [], 0, None, None
        self.timer.start(int(1000 / self.fps))
        self._grab()

    def _grab(self) -> None:
        frame = qimage_to_rgb(self.widget.grab().toImage())
        if self._size is None:
            # Encoders want one size, with even dimensions.
            self._size = (frame.shape[0] // 2 * 2, frame.shape[1] // 2 * 2)
        h, w = self._size
        if frame.shape[0] < h or frame.shape[1] < w:  # the window shrank: pad back to the first size
            frame = np.pad(frame, ((0, max(0, h - frame.shape[0])), (0, max(0, w - frame.shape[1])), (0, 0)))
        frame = np.ascontiguousarray(frame[:h, :w])
        self.count += 1
        if self.path.suffix.lower() == ".gif":
            self.frames.append(frame)
            if len(self.frames) * frame.nbytes >= GIF_MAX_BYTES:
                self.stop()
            return
        try:
            if self._writer is None:
                self._writer = self._open_writer(w, h)
            cv2 = quiet_cv2()
            self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        except DeepvisError as exc:
            self.timer.stop()
            self.finished.emit(str(self.path), str(exc))

    def _open_writer(self, w: int, h: int):
        cv2 = quiet_cv2()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fourcc = "mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"
        writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h))
        if not writer.isOpened():
            raise DeepvisError(f"cannot write video {self.path}")
        return writer

    def stop(self, wait: bool = False) -> threading.Thread | None:
        """Stop and finish the file (on a background thread for GIF); ``finished`` says how it went."""
        if not self.timer.isActive():
            return None
        self.timer.stop()
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            self.finished.emit(str(self.path), "")
            return None
        frames, path, self.frames = self.frames, self.path, []
        thread = threading.Thread(target=self._write_gif, args=(path, frames), daemon=True)
        thread.start()
        if wait:
            thread.join()
        return thread

    def _write_gif(self, path: Path, frames) -> None:
        try:
            from PIL import Image

            images = [Image.fromarray(f) for f in frames]
            images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / self.fps), loop=0)
            self.finished.emit(str(path), "")
        except (OSError, ValueError) as exc:
            self.finished.emit(str(path), str(exc))
