"""Reading and writing image and video files as RGB uint8 arrays.

Everything the engine shows or feeds to a network starts as an ``(H, W, 3)`` uint8 RGB array,
so this module normalises whatever is on disk (grayscale, palette, 16-bit, alpha, CMYK,
rotated phone photos) into that one shape, and turns every way a file can be bad into a
one-line :class:`~deepvis.errors.DeepvisError` that names the file.

OpenCV is used only for video; :func:`quiet_cv2` imports it with its console chatter turned
down so that a missing camera or a broken video is reported once, by us, as a value.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from deepvis.errors import DeepvisError
from deepvis.io import truncation

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "quiet_cv2",
    "read_image",
    "write_image",
    "write_video",
]

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)
"""Lower-case file suffixes (with the dot) that deepvis treats as still images."""

VIDEO_SUFFIXES: frozenset[str] = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
)
"""Lower-case file suffixes (with the dot) that deepvis treats as videos."""

# Codecs that the pip wheels of OpenCV can always encode without extra system libraries.
_VIDEO_FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}

# Everything Pillow's decoders raise for a damaged file; they do not share a base class.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    struct.error,
    Image.DecompressionBombError,
)

_cv2: ModuleType | None = None

MAX_IMAGE_PIXELS = 2**26  # 8192 x 8192: any larger picture is refused by its header (a 12000 x 12000 one was
# read, then every command working at its size ran out of memory)


def quiet_cv2() -> ModuleType:
    """Import ``cv2`` with its warnings silenced and its thread pool off, and return the module.

    OpenCV prints a warning per failed camera index and FFmpeg prints decoder complaints for
    broken files; deepvis reports those problems itself, so the console noise only confuses.
    Values already set in the environment by the user win, so ``OPENCV_LOG_LEVEL=DEBUG``
    still works for troubleshooting.
    """
    global _cv2
    if _cv2 is None:
        user_set_level = "OPENCV_LOG_LEVEL" in os.environ
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
        # Read by OpenCV when it first initialises FFmpeg, i.e. at the first VideoCapture,
        # so setting it here works even if someone imported cv2 before us. -8 is AV_LOG_QUIET.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        import cv2

        if not user_set_level:
            # The environment variable is only read at import; cv2 may have been imported
            # earlier by another library, so also set the level directly.
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        # OpenCV's own worker pool would compete with torch's OpenMP team for the same cores
        # (see deepvis.live.computethread); our frames are small enough for one thread.
        cv2.setNumThreads(0)
        _cv2 = cv2
    return _cv2


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as a C-contiguous RGB uint8 array of shape ``(H, W, 3)``.

    Accepts anything Pillow can open (PNG, JPEG, BMP, GIF (first frame), TIFF, WebP, ...).
    EXIF orientation is applied, so phone photos come out upright. Grayscale and palette
    images are expanded to RGB, 16-bit images are scaled down to 8 bits, and transparent
    images are composited onto black (what the network would see of a transparent pixel is
    otherwise whatever colour happened to be stored under it).

    Raises:
        DeepvisError: the file is missing, a folder, empty, not an image, or corrupt/truncated.
    """
    path = Path(path)
    if not path.exists():
        raise DeepvisError(f"cannot read image {path}: no such file")
    if path.is_dir():
        raise DeepvisError(f"cannot read image {path}: it is a folder, not a file")
    try:
        if path.stat().st_size == 0:
            raise DeepvisError(f"cannot read image {path}: the file is empty")
        with Image.open(path) as im:
            # The size is in the header: a picture too large to hold is refused before decoding.
            if im.width * im.height > MAX_IMAGE_PIXELS:
                raise DeepvisError(f"{path} is {im.width}x{im.height} ({im.width * im.height / 1e6:.0f} million "
                                   f"pixels): at most {MAX_IMAGE_PIXELS / 1e6:.0f} million; shrink it")
            # Image.open only parses the header; decoding happens in load(). Calling it here
            # makes truncated and corrupt files fail inside this try instead of later.
            im = ImageOps.exif_transpose(_decoded(im, path))
            rgb = _to_rgb(im)
    except DeepvisError:
        raise
    except UnidentifiedImageError:
        raise DeepvisError(
            f"cannot read image {path}: not an image file or an unsupported format"
        ) from None
    except PermissionError:
        raise DeepvisError(f"cannot read image {path}: permission denied") from None
    except _DECODE_ERRORS as e:
        raise DeepvisError(f"cannot read image {path}: corrupt or truncated ({e})") from None
    return np.ascontiguousarray(rgb)


def _decoded(im: Image.Image, path: Path) -> Image.Image:
    """``im`` decoded; a file cut short is refused unless the user allowed truncated files,
    then it is decoded again with the missing part filled in."""
    try:
        im.load()
        return im
    except OSError as e:
        if "truncated" not in str(e):
            raise
        what = "its data ends before the picture does; the decoder fills in the rest"
        if not truncation.allowed(path, what):
            raise DeepvisError(f"cannot read image {path}: the file is truncated ({what.split(';')[0]}); "
                               f"{truncation.HINT}") from None
    # Pillow's switch is process-wide: it is on only for this one decode.
    saved, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, True
    try:
        with Image.open(path) as again:
            again.load()
            return again.copy()
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Convert a loaded Pillow image of any mode to an RGB uint8 array."""
    mode = im.mode
    if mode.startswith("I") or mode == "F":
        # Pillow's convert("RGB") clips high-bit-depth gray to 255 instead of scaling it,
        # which turns a 16-bit scan into a white page; scale explicitly.
        gray = _gray_to_uint8(np.asarray(im))
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)
        alpha = rgba[:, :, 3:4]
        # Composite onto black with rounding: rgb * alpha / 255.
        return ((rgba[:, :, :3] * alpha + 127) // 255).astype(np.uint8)
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8)


def _gray_to_uint8(a: np.ndarray) -> np.ndarray:
    """Scale a 16/32-bit integer or float gray image to uint8."""
    if a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        # Float images are conventionally 0..1; anything larger is assumed to be 0..255.
        scale = 255.0 if a.size and a.max() <= 1.0 else 1.0
        return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    # Integer modes (I;16*, I) hold 16-bit samples in practice (PNG/TIFF scans).
    a = np.clip(a.astype(np.int64), 0, 65535)
    return ((a * 255 + 32767) // 65535).astype(np.uint8)


def write_image(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array of shape ``(H, W)``, ``(H, W, 3)`` (RGB) or ``(H, W, 4)`` (RGBA).

    The format follows the suffix (one of :data:`IMAGE_SUFFIXES`); missing parent folders are
    created. JPEG has no alpha channel, so RGBA written as JPEG is composited onto black,
    matching what :func:`read_image` returns for the same RGBA written as PNG.

    Raises:
        DeepvisError: the suffix is not an image suffix or the file cannot be written.
        ValueError: the array is not uint8 or has an unsupported shape (a programming error).
    """
    path = Path(path)
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_image needs a uint8 array, got {array.dtype}")
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise ValueError(f"write_image needs (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise DeepvisError(
            f"cannot write image {path}: unsupported suffix {suffix or '(none)'!r}; "
            f"use one of {', '.join(sorted(IMAGE_SUFFIXES))}"
        )
    fmt = Image.registered_extensions()[suffix]
    if fmt == "JPEG" and array.ndim == 3 and array.shape[2] == 4:
        alpha = array[:, :, 3:4].astype(np.uint16)
        array = ((array[:, :, :3] * alpha + 127) // 255).astype(np.uint8)
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    image = Image.fromarray(np.ascontiguousarray(array))
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format=fmt, **options)
    except (OSError, ValueError) as e:
        if not existed:
            # Do not leave a half-written file that later reads as "corrupt".
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        raise DeepvisError(f"cannot write image {path}: {_reason(e)}") from None


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float) -> int:
    """Write RGB uint8 frames of one size to an ``.mp4`` (mp4v) or ``.avi`` (MJPG) file.

    Frames may be ``(H, W, 3)`` RGB or ``(H, W)`` gray. Missing parent folders are created.
    Returns the number of frames written.

    Raises:
        DeepvisError: unsupported suffix, no frames, or the file cannot be opened for writing.
        ValueError: a frame is not uint8 or differs in size from the first frame (OpenCV would
            otherwise drop it silently).
    """
    cv2 = quiet_cv2()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _VIDEO_FOURCC:
        raise DeepvisError(
            f"cannot write video {path}: unsupported suffix {suffix or '(none)'!r}; "
            "use .mp4 or .avi"
        )
    if not fps > 0:
        raise ValueError(f"write_video needs fps > 0, got {fps}")
    writer = None
    size: tuple[int, int] | None = None
    count = 0
    try:
        for frame in frames:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim not in (2, 3):
                raise ValueError(
                    f"frame {count}: need uint8 (H, W[, 3]), got {frame.dtype} {frame.shape}"
                )
            bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR if frame.ndim == 2 else cv2.COLOR_RGB2BGR)
            if writer is None:
                size = (bgr.shape[1], bgr.shape[0])
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise DeepvisError(f"cannot write video {path}: {_reason(e)}") from None
                fourcc = cv2.VideoWriter_fourcc(*_VIDEO_FOURCC[suffix])
                writer = cv2.VideoWriter(str(path), fourcc, float(fps), size)
                if not writer.isOpened():
                    raise DeepvisError(
                        f"cannot write video {path}: OpenCV could not open it for writing "
                        "(check that the folder is writable)"
                    )
            elif (bgr.shape[1], bgr.shape[0]) != size:
                raise ValueError(
                    f"frame {count} is {bgr.shape[1]}x{bgr.shape[0]}, "
                    f"expected {size[0]}x{size[1]}"
                )
            writer.write(bgr)
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise DeepvisError(f"cannot write video {path}: no frames to write")
    return count


def _reason(e: BaseException) -> str:
    """The human part of an OS error, without the errno prefix and repeated path."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e)


def write_gif(path: str | Path, frames, frame_ms: int = 80) -> None:
    """An animated GIF that loops forever; frames are uint8 RGB of one size."""
    from PIL import Image

    frames = list(frames)
    if not frames:
        raise DeepvisError(f"cannot write {path}: no frames")
    try:
        images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
        images[0].save(str(path), save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    except OSError as exc:
        raise DeepvisError(f"cannot write {path}: {exc.strerror or exc}") from None
