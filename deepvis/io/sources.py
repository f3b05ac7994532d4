"""Frame sources: where the images that flow through a network come from.

Every source yields RGB uint8 :class:`Frame` objects from :meth:`FrameSource.read`. Problems
are returned as :class:`FrameError` values instead of raised, because the reader is usually
a capture thread that must keep running (and tell the GUI) when a file is corrupt or a
camera is unplugged. Only :func:`open_source` raises, for a spec that names nothing usable.

Threading: one thread reads (the live pipeline's capture thread for cameras and real-time
video, its compute thread otherwise); another (the GUI) may call
:meth:`FrameSource.next_item`, :meth:`FrameSource.previous_item` and :meth:`FrameSource.close`
concurrently. State is guarded by a per-source lock, so such a call may wait for a decode
that is in progress (one image or video frame).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepvis.errors import DeepvisError
from deepvis.io.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, quiet_cv2, read_image

__all__ = [
    "CameraSource",
    "Frame",
    "FrameError",
    "FrameSource",
    "ImageFileSource",
    "ImageFolderSource",
    "PatternSource",
    "VideoFileSource",
    "list_cameras",
    "open_source",
]

# Serials come from one process-wide counter: still strictly increasing within each source,
# and additionally never repeated across sources, so a consumer that caches results by
# serial cannot confuse the first frame of a newly opened source with the old one's.
# next() on itertools.count is atomic under the GIL.
_serials = itertools.count(1)

# A camera that fails this many reads in a row is treated as gone (unplugged, taken by
# another program); single failures happen on some drivers and are only reported.
_CAMERA_MAX_FAILURES = 10


@dataclass(frozen=True, eq=False)
class Frame:
    """One RGB image produced by a source.

    ``eq=False`` keeps identity comparison and hashing: comparing pixel arrays with ``==``
    would be ambiguous, and sources rely on returning *the same* Frame for an unchanged image.
    """

    image: np.ndarray
    """RGB uint8, shape ``(H, W, 3)``, C-contiguous and read-only (shared with consumers)."""
    index: int
    """Position within the source: file index in a folder, frame number in a video."""
    serial: int
    """Increases for every new frame; unchanged when a source returns the same image again."""
    name: str
    """What the frame shows: a file name, ``'camera 0'`` or ``'pattern'``."""
    timestamp: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when the frame was captured or decoded."""

    def __post_init__(self) -> None:
        image = self.image
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"Frame.image must be uint8 (H, W, 3), got {image.dtype} {image.shape}"
            )
        if not image.flags.c_contiguous:
            image = np.ascontiguousarray(image)
            object.__setattr__(self, "image", image)
        # Frames are shared between the capture thread, the network and the views; a view
        # that drew on the array in place would corrupt everyone else's copy.
        image.flags.writeable = False


@dataclass(frozen=True)
class FrameError:
    """A problem reading a frame, explained in one line."""

    message: str
    fatal: bool = False
    """True when the source can produce nothing more (camera missing, end of a video)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", " ".join(str(self.message).split()))


class FrameSource:
    """Base class of all sources; subclasses implement :meth:`_read`.

    Use as a context manager or call :meth:`close` when done.
    """

    is_live: bool = False
    """True when the source produces new frames over time (camera, video, pattern)."""

    @property
    def self_paced(self) -> bool:
        """True when reads block until the next frame is due (a camera, real-time playback):
        such a source must be read on its own thread, and frames that nobody took are dropped."""
        return getattr(self, "_pacer", None) is not None

    def __init__(self, name: str):
        self._name = name
        self._lock = threading.RLock()
        self._closed = False
        self.errors: list[str] = []
        """Non-fatal problems seen so far, e.g. skipped unreadable files, oldest first."""
        self.last_wait_s = 0.0
        """How long the last read slept until its frame was due (paced sources), so that
        callers can tell decoding time from waiting."""

    @property
    def name(self) -> str:
        """Short human-readable name of the source (file or folder name, ``'camera 0'``)."""
        return self._name

    @property
    def frame_count(self) -> int | None:
        """Number of items (files, video frames) or None when unknown or unbounded."""
        return None

    def read(self) -> Frame | FrameError:
        """Return the current frame, or a FrameError describing why there is none."""
        # Pacing sleeps happen before taking the lock so GUI calls are not held up by them.
        start = time.monotonic()
        self._wait_until_due()
        self.last_wait_s = time.monotonic() - start
        with self._lock:
            if self._closed:
                return FrameError(f"{self._name} is closed", fatal=True)
            return self._read()

    def next_item(self) -> None:
        """Move to the next item (next file, ~1 s forward in a video); no-op by default."""

    def previous_item(self) -> None:
        """Move to the previous item (previous file, ~1 s back in a video); no-op by default."""

    def close(self) -> None:
        """Release files and devices; later reads return a fatal FrameError. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name!r}>"

    # Subclass hooks -------------------------------------------------------------------------

    def _read(self) -> Frame | FrameError:
        raise NotImplementedError

    def _release(self) -> None:
        """Free resources; called once, under the lock."""

    def _wait_until_due(self) -> None:
        """Block until the next frame is due; only paced sources wait."""

    def _make_frame(self, image: np.ndarray, index: int, name: str | None = None) -> Frame:
        return Frame(image=image, index=index, serial=next(_serials), name=name or self._name)


class _Pacer:
    """Spaces calls to ``wait()`` at least ``1 / fps`` apart.

    When the consumer is slower than the fps, it does not try to catch up with a burst of
    frames; playback then runs slower than real time rather than jumping.
    """

    def __init__(self, fps: float):
        self.interval = 1.0 / fps
        self._due: float | None = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._due is not None and now < self._due:
            time.sleep(self._due - now)
            now = self._due
        self._due = now + self.interval


# Still images -------------------------------------------------------------------------------


class ImageFileSource(FrameSource):
    """A single image file: every read returns the same Frame (same serial).

    The file is decoded on the first read, in the reading thread. A file that cannot be
    decoded makes every read return the same fatal FrameError.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        super().__init__(self.path.name)
        self._result: Frame | FrameError | None = None

    @property
    def frame_count(self) -> int:
        """Always 1."""
        return 1

    def _read(self) -> Frame | FrameError:
        if self._result is None:
            try:
                self._result = self._make_frame(read_image(self.path), index=0)
            except DeepvisError as e:
                self._result = FrameError(str(e), fatal=True)
        return self._result

    def _release(self) -> None:
        self._result = None


def _natural_key(text: str) -> tuple:
    """Sort key for 'img2' < 'img10', ignoring case."""
    # re.split with a capturing group alternates text, number, text, ... starting with text,
    # so keys of different names always compare str with str and int with int.
    parts = re.split(r"(\d+)", text.casefold())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


class ImageFolderSource(FrameSource):
    """The image files in a folder, in natural order (``img2`` before ``img10``).

    By default :meth:`read` keeps returning the current file's Frame (same serial) and
    :meth:`next_item` / :meth:`previous_item` move between files, wrapping around when
    ``cycle`` is true; ``start`` names the file shown first. With ``advance_on_read=True``
    every read after the first moves to the next file (slide shows, benchmarks, feature
    extraction); with ``cycle=False`` the read after the last file returns a fatal "end of
    folder" FrameError.

    Only the file list is built up front (hidden files such as macOS ``._name.jpg`` are
    ignored); files are decoded lazily and only the current one is kept. Unreadable files
    are skipped in the direction of travel and reported once each in :attr:`errors`.
    """

    is_live = False

    def __init__(
        self,
        path: str | Path,
        cycle: bool = True,
        advance_on_read: bool = False,
        recursive: bool = False,
        start: str | None = None,
    ):
        self.folder = Path(path)
        super().__init__(self.folder.resolve().name or str(self.folder))
        self.cycle = cycle
        self.advance_on_read = advance_on_read
        self.recursive = recursive
        self._pos = 0
        self._step = 1  # direction of the last move, so skipping continues that way
        self._frame: Frame | None = None
        self._started = False  # advance_on_read: the first read shows file 0, not file 1
        self._bad: set[int] = set()
        self._fatal: FrameError | None = None
        self.paths: list[Path] = []
        """The image files, in natural order."""
        try:
            self.paths = self._list_images()
        except OSError as e:
            reason = e.strerror.lower() if e.strerror else str(e)
            self._fatal = FrameError(f"cannot list folder {self.folder}: {reason}", fatal=True)
            return
        if not self.paths:
            self._fatal = FrameError(
                f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {self.folder}",
                fatal=True,
            )
        elif start is not None:
            # The file to show first (the bundled photos open on one the default model gets
            # right); a name that is not there starts at the first file as usual.
            self._pos = next((i for i, p in enumerate(self.paths) if p.name == start), 0)

    def _list_images(self) -> list[Path]:
        found: list[Path] = []
        # os.scandir reuses the directory entry's type information, which keeps listing a
        # folder of thousands of files fast (no stat per file on most file systems).
        pending = [self.folder]
        while pending:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir():
                        if self.recursive:
                            pending.append(Path(entry.path))
                    elif entry.is_file():
                        if os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
                            found.append(Path(entry.path))

        def key(p: Path) -> tuple:
            rel = p.relative_to(self.folder)
            return tuple(_natural_key(part) for part in rel.parts), str(rel)

        return sorted(found, key=key)

    @property
    def frame_count(self) -> int:
        """Number of image files found (including ones that later turn out unreadable)."""
        return len(self.paths)

    @property
    def current_path(self) -> Path | None:
        """The file :meth:`read` returns (or will try next); None for an empty folder."""
        with self._lock:
            return self.paths[self._pos] if self.paths else None

    def next_item(self) -> None:
        """Move to the next file (wrapping around when ``cycle``); decoding waits for read()."""
        with self._lock:
            self._move(+1)

    def previous_item(self) -> None:
        """Move to the previous file (wrapping around when ``cycle``)."""
        with self._lock:
            self._move(-1)

    def _move(self, step: int) -> bool:
        """Step the position; False when ``cycle`` is off and there is nowhere to go."""
        if not self.paths:
            return False
        target = self._pos + step
        if not 0 <= target < len(self.paths):
            if not self.cycle:
                return False
            target %= len(self.paths)
        self._pos = target
        self._step = step
        self._frame = None
        return True

    def _read(self) -> Frame | FrameError:
        if self._fatal is not None:
            return self._fatal
        if self.advance_on_read:
            if self._started and not self._move(+1):
                return self._end_of_folder()
            self._started = True
        if self._frame is not None:
            return self._frame
        # Walk in the direction of the last move past unreadable files. Without cycling the
        # walk may hit an end and turn around, so it can take up to 2n steps to see every file;
        # steps over files already known to be bad cost nothing.
        for _ in range(2 * len(self.paths)):
            if self._pos not in self._bad:
                path = self.paths[self._pos]
                try:
                    image = read_image(path)
                except DeepvisError as e:
                    self._bad.add(self._pos)
                    self.errors.append(f"skipped {e}")
                else:
                    self._frame = self._make_frame(image, index=self._pos, name=path.name)
                    return self._frame
            if len(self._bad) == len(self.paths):
                break
            if not self._move(self._step):
                if self.advance_on_read:
                    # Going back would show a file again, which advancing promises not to do.
                    return self._end_of_folder()
                # Browsing with cycle=False ran off an end: turn around to find a readable file.
                self._step = -self._step
                if not self._move(self._step):
                    break
        if len(self._bad) == len(self.paths):
            self._fatal = FrameError(f"no readable images in folder {self.folder}", fatal=True)
            return self._fatal
        # Unreachable with at least one readable file; kept as a safe value, not an exception.
        return FrameError(f"no readable image found near {self.paths[self._pos].name}")

    def _end_of_folder(self) -> FrameError:
        return FrameError(f"end of folder {self.folder} ({len(self.paths)} images)", fatal=True)

    def _release(self) -> None:
        self._frame = None


# Video and camera ---------------------------------------------------------------------------


def _bgr_to_rgb(cv2, image: np.ndarray) -> np.ndarray:
    """Convert an OpenCV frame (BGR, BGRA or gray) to RGB."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class VideoFileSource(FrameSource):
    """Frames of a video file, decoded with OpenCV.

    At the end it starts again from frame 0 when ``loop`` is true, otherwise every read returns
    a fatal "end of video" FrameError. With ``realtime=True`` reads are paced to the file's fps
    so playback runs at natural speed; otherwise frames come as fast as they are asked for.
    :meth:`next_item` / :meth:`previous_item` seek about one second forward / back.
    """

    is_live = True

    def __init__(self, path: str | Path, loop: bool = True, realtime: bool = False):
        self.path = Path(path)
        super().__init__(self.path.name)
        self.loop = loop
        self._cv2 = quiet_cv2()
        self._cap = self._cv2.VideoCapture(str(self.path))
        self._fatal: FrameError | None = None
        self._next_index = 0
        self._decoded_any = False
        if not self._cap.isOpened():
            self._cap.release()
            self._fatal = FrameError(
                f"cannot open video {self.path}: not a video OpenCV can decode", fatal=True
            )
        fps = self._cap.get(self._cv2.CAP_PROP_FPS) if self._fatal is None else 0.0
        # Containers without a frame rate report 0 (or absurd values); None means unknown.
        self.fps: float | None = float(fps) if 0 < fps < 1000 else None
        """Frames per second declared by the file, or None when unknown."""
        count = int(self._cap.get(self._cv2.CAP_PROP_FRAME_COUNT)) if self._fatal is None else 0
        self._frame_count = count if count > 0 else None
        self._pacer = _Pacer(self.fps or 30.0) if realtime else None

    @property
    def frame_count(self) -> int | None:
        """Number of frames declared by the container; None when it does not say."""
        return self._frame_count

    def _wait_until_due(self) -> None:
        if self._pacer is not None and self._fatal is None:
            self._pacer.wait()

    def _read(self) -> Frame | FrameError:
        if self._fatal is not None:
            return self._fatal
        ok, image = self._grab()
        if not ok:
            # Only a failure at the very start means "no frames"; a failure after a seek near a
            # miscounted end is just the end.
            if not self._decoded_any and self._next_index == 0:
                self._fatal = FrameError(
                    f"cannot read video {self.path}: it has no decodable frames", fatal=True
                )
                return self._fatal
            if not self.loop:
                self._fatal = FrameError(f"end of video {self.path.name}", fatal=True)
                return self._fatal
            self._seek(0)
            ok, image = self._grab()
            if not ok:
                # Some containers cannot seek back; reopening always starts at frame 0.
                self._cap.release()
                self._cap = self._cv2.VideoCapture(str(self.path))
                self._next_index = 0
                ok, image = self._grab()
            if not ok:
                self._fatal = FrameError(
                    f"cannot restart video {self.path.name} after its end", fatal=True
                )
                return self._fatal
        self._decoded_any = True
        index = self._next_index
        self._next_index += 1
        return self._make_frame(_bgr_to_rgb(self._cv2, image), index=index)

    def _grab(self) -> tuple[bool, np.ndarray | None]:
        try:
            ok, image = self._cap.read()
        except self._cv2.error:
            return False, None
        return (ok and image is not None and image.size > 0), image

    def _seek(self, index: int) -> None:
        self._cap.set(self._cv2.CAP_PROP_POS_FRAMES, index)
        self._next_index = index

    def next_item(self) -> None:
        """Seek about one second forward (wrapping to the start when looping)."""
        self._seek_by_seconds(+1)

    def previous_item(self) -> None:
        """Seek about one second back (not before the first frame)."""
        self._seek_by_seconds(-1)

    def _seek_by_seconds(self, seconds: int) -> None:
        with self._lock:
            if self._closed or self._fatal is not None:
                return
            target = self._next_index + seconds * max(1, round(self.fps or 30.0))
            if self._frame_count is not None and target >= self._frame_count:
                target = target % self._frame_count if self.loop else self._frame_count - 1
            self._seek(max(0, target))

    def _release(self) -> None:
        self._cap.release()


def _camera_backend(cv2) -> int:
    # On Linux, CAP_ANY tries V4L2 and then FFmpeg/GStreamer, which only add warnings (and in
    # some builds, multi-second timeouts) for a missing device; V4L2 answers immediately.
    return cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY


class CameraSource(FrameSource):
    """A webcam, opened with OpenCV on the first read (in the reading thread).

    ``width`` / ``height`` are requests passed to the driver, which may pick another size;
    frames are not resized. When the camera cannot be opened every read returns a fatal
    FrameError; a camera that stops delivering frames becomes fatal after a few failures.
    """

    is_live = True
    self_paced = True

    def __init__(self, index: int = 0, width: int | None = None, height: int | None = None):
        super().__init__(f"camera {index}")
        self.index = index
        self.width = width
        self.height = height
        self._cv2 = quiet_cv2()
        self._cap = None
        self._fatal: FrameError | None = None
        self._failures = 0
        self._count = 0

    def _open(self) -> None:
        cv2 = self._cv2
        cap = cv2.VideoCapture(self.index, _camera_backend(cv2))
        if not cap.isOpened():
            cap.release()
            self._fatal = FrameError(
                f"camera {self.index} is not available "
                "(not connected, or in use by another program)",
                fatal=True,
            )
            return
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self._cap = cap

    def _read(self) -> Frame | FrameError:
        if self._fatal is not None:
            return self._fatal
        if self._cap is None:
            self._open()
            if self._fatal is not None:
                return self._fatal
        try:
            ok, image = self._cap.read()
        except self._cv2.error:
            ok, image = False, None
        if not ok or image is None or image.size == 0:
            self._failures += 1
            if self._failures >= _CAMERA_MAX_FAILURES:
                self._fatal = FrameError(
                    f"camera {self.index} stopped delivering frames", fatal=True
                )
                return self._fatal
            message = f"camera {self.index} returned no frame"
            self.errors.append(message)
            return FrameError(message)
        self._failures = 0
        index = self._count
        self._count += 1
        return self._make_frame(_bgr_to_rgb(self._cv2, image), index=index)

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def list_cameras(max_index: int = 8) -> list[int]:
    """Indices below ``max_index`` of cameras that OpenCV can open, probed quickly.

    Opening a camera does not read from it, so this takes milliseconds per index. On Linux,
    indices without a ``/dev/videoN`` node are skipped without asking OpenCV at all.
    """
    cv2 = quiet_cv2()
    backend = _camera_backend(cv2)
    linux = sys.platform.startswith("linux")
    found = []
    for index in range(max_index):
        if linux and not os.path.exists(f"/dev/video{index}"):
            continue
        cap = cv2.VideoCapture(index, backend)
        try:
            if cap.isOpened():
                found.append(index)
        finally:
            cap.release()
    return found


# Synthetic ----------------------------------------------------------------------------------

_BARS = np.array(
    [
        [255, 255, 255],
        [255, 255, 0],
        [0, 255, 255],
        [0, 255, 0],
        [255, 0, 255],
        [255, 0, 0],
        [0, 0, 255],
        [0, 0, 0],
    ],
    dtype=np.uint8,
)


class PatternSource(FrameSource):
    """A synthetic moving test pattern, for trying deepvis without a camera or files.

    Colour bars on top, a rotating colour gradient below, and a bright disc bouncing over
    both. Frame ``n`` depends only on ``n`` (the read count), so runs are reproducible; each
    read is a new frame with a new serial. ``fps`` paces reads like a camera would; None
    produces frames as fast as they are asked for.
    """

    is_live = True

    def __init__(self, width: int = 320, height: int = 240, fps: float | None = None):
        if width < 8 or height < 8:
            raise ValueError(f"pattern needs at least 8x8 pixels, got {width}x{height}")
        super().__init__("pattern")
        self.width = width
        self.height = height
        self.fps = fps
        self._pacer = _Pacer(fps) if fps else None
        self._count = 0
        # Everything that does not move is computed once; a read only redraws the rest.
        self._split = height * 2 // 3
        columns = np.arange(width) * len(_BARS) // width
        self._bars = np.broadcast_to(_BARS[columns], (self._split, width, 3))
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        self._ys, self._xs = ys, xs
        lower_y = ys[self._split :] - (self._split + height) / 2
        lower_x = xs[self._split :] - width / 2
        self._lower_angle = np.arctan2(lower_y, lower_x)

    def _wait_until_due(self) -> None:
        if self._pacer is not None:
            self._pacer.wait()

    def _read(self) -> Frame:
        n = self._count
        self._count += 1
        return self._make_frame(self.render(n), index=n)

    def render(self, n: int) -> np.ndarray:
        """The pattern's frame number ``n`` (what the ``n``-th read returns)."""
        h, w = self.height, self.width
        image = np.empty((h, w, 3), dtype=np.uint8)
        image[: self._split] = self._bars
        # Rotating hue wheel: three cosines 120 degrees apart, turning ~6 degrees per frame.
        angle = self._lower_angle + (n * 0.1) % (2 * math.pi)
        phases = np.array([0.0, 2 * math.pi / 3, 4 * math.pi / 3], dtype=np.float32)
        wheel = 127.5 + 127.5 * np.cos(angle[:, :, None] - phases)
        image[self._split :] = wheel.astype(np.uint8)
        # Disc bouncing off the edges: a triangle wave in x and y with different periods.
        radius = max(3, min(h, w) // 10)
        cx = radius + _triangle(n * 3, w - 2 * radius)
        cy = radius + _triangle(n * 2, h - 2 * radius)
        disc = (self._xs - cx) ** 2 + (self._ys - cy) ** 2 <= radius**2
        image[disc] = (255, 255, 255)
        return image


def _triangle(t: int, span: int) -> int:
    """0, 1, ..., span, span-1, ..., 0, 1, ... (a bounce between 0 and span)."""
    if span <= 0:
        return 0
    t %= 2 * span
    return t if t <= span else 2 * span - t


# Dispatch -----------------------------------------------------------------------------------

_CAMERA_SPEC = re.compile(r"camera(?::(\d+))?", re.IGNORECASE)


def open_source(spec: str | Path, **kwargs) -> FrameSource:
    """Open a source from a command-line style spec.

    ``'pattern'`` gives a :class:`PatternSource`, ``'camera'`` / ``'camera:N'`` a
    :class:`CameraSource`, a folder an :class:`ImageFolderSource`, an image file an
    :class:`ImageFileSource` and a video file a :class:`VideoFileSource`. ``kwargs`` go to the
    chosen class. A file literally named ``pattern`` or ``camera`` can be opened as
    ``./pattern``.

    Raises:
        DeepvisError: the path does not exist, or is neither image, folder nor video.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower() == "pattern":
            return PatternSource(**kwargs)
        match = _CAMERA_SPEC.fullmatch(text)
        if match:
            return CameraSource(int(match.group(1) or 0), **kwargs)
        if text.lower().startswith("camera:"):
            raise DeepvisError(
                f"bad camera spec {text!r}: expected camera:N with N a number, e.g. camera:0"
            )
    path = Path(spec).expanduser()
    if not path.exists():
        raise DeepvisError(f"input not found: {path}")
    if path.is_dir():
        return ImageFolderSource(path, **kwargs)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return ImageFileSource(path, **kwargs)
    if suffix in VIDEO_SUFFIXES:
        return VideoFileSource(path, **kwargs)
    raise DeepvisError(
        f"unsupported input {path}: "
        "expected an image, a folder of images, a video, camera:N or pattern"
    )
