"""Frame sources (deepvis.io.sources): files, folders, videos, cameras, the test pattern."""

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deepvis.io.sources as sources
from deepvis.errors import DeepvisError
from deepvis.io.images import write_video
from deepvis.io.sources import (
    CameraSource,
    Frame,
    FrameError,
    FrameSource,
    ImageFileSource,
    ImageFolderSource,
    PatternSource,
    VideoFileSource,
    list_cameras,
    open_source,
)


def _solid(path, rgb, size=(24, 16)):
    Image.new("RGB", size, rgb).save(path)
    return Path(path)


def _frame(result) -> Frame:
    assert isinstance(result, Frame), result
    return result


def _assert_frame_image(frame, shape=None):
    image = frame.image
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.flags.c_contiguous and not image.flags.writeable
    if shape is not None:
        assert image.shape == shape


# Frame and FrameError -----------------------------------------------------------------------


def test_frame_is_read_only_and_validated():
    image = np.zeros((4, 5, 3), np.uint8)
    frame = Frame(image=image, index=0, serial=1, name="x")
    with pytest.raises(ValueError):
        frame.image[0, 0, 0] = 1
    assert frame.timestamp <= time.monotonic()
    with pytest.raises(ValueError):
        Frame(image=np.zeros((4, 5), np.uint8), index=0, serial=1, name="x")
    # Non-contiguous input is copied into a contiguous one.
    flipped = Frame(image=np.zeros((4, 5, 3), np.uint8)[:, ::-1], index=0, serial=2, name="x")
    assert flipped.image.flags.c_contiguous


def test_frame_error_is_one_line():
    error = FrameError("two\n  lines", fatal=True)
    assert error.message == "two lines" and error.fatal
    assert FrameError("soft").fatal is False


# Single image -------------------------------------------------------------------------------


def test_image_file_returns_the_same_frame_every_read(tmp_path):
    path = _solid(tmp_path / "red.png", (255, 0, 0))
    with ImageFileSource(path) as source:
        assert source.name == "red.png" and not source.is_live and source.frame_count == 1
        first = _frame(source.read())
        _assert_frame_image(first, (16, 24, 3))
        assert first.image[0, 0].tolist() == [255, 0, 0]
        assert first.name == "red.png" and first.index == 0
        for _ in range(3):
            again = source.read()
            assert again is first and again.serial == first.serial
        # next/previous are no-ops for a single image.
        source.next_item()
        source.previous_item()
        assert source.read() is first


def test_corrupt_image_file_is_a_fatal_error_every_read(tmp_path):
    path = tmp_path / "bad.png"
    path.write_text("not an image")
    source = ImageFileSource(path)  # constructing never raises
    for _ in range(2):
        error = source.read()
        assert isinstance(error, FrameError) and error.fatal
        assert "bad.png" in error.message and "not an image" in error.message


def test_missing_image_file_constructed_directly_reports_instead_of_raising(tmp_path):
    error = ImageFileSource(tmp_path / "gone.jpg").read()
    assert isinstance(error, FrameError) and error.fatal and "gone.jpg" in error.message


def test_read_after_close_is_fatal(tmp_path):
    source = ImageFileSource(_solid(tmp_path / "a.png", (1, 2, 3)))
    _frame(source.read())
    source.close()
    source.close()  # idempotent
    error = source.read()
    assert isinstance(error, FrameError) and error.fatal and "closed" in error.message


# Folder ---------------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path):
    """img1, img2, IMG3 (upper case), img10 with distinct colours, plus one corrupt file and
    some things that must be ignored."""
    d = tmp_path / "photos"
    d.mkdir()
    _solid(d / "img10.png", (10, 0, 0))
    _solid(d / "img2.jpg", (0, 200, 0))
    _solid(d / "img1.png", (1, 0, 0))
    _solid(d / "IMG3.bmp", (3, 0, 0))
    (d / "img5.png").write_text("corrupt")  # sorts between IMG3 and img10
    (d / "notes.txt").write_text("ignored: not an image suffix")
    (d / "._img1.png").write_bytes(b"\x00\x05\x16\x07")  # macOS resource fork, hidden
    (d / "sub").mkdir()
    _solid(d / "sub" / "img0.png", (99, 0, 0))
    return d


def _names(source):
    return [p.name for p in source.paths]


def test_folder_lists_in_natural_case_insensitive_order(folder):
    source = ImageFolderSource(folder)
    assert _names(source) == ["img1.png", "img2.jpg", "IMG3.bmp", "img5.png", "img10.png"]
    assert source.frame_count == 5 and not source.is_live
    assert source.name == "photos"
    assert source.current_path == folder / "img1.png"


def test_folder_recursive(folder):
    source = ImageFolderSource(folder, recursive=True)
    assert [p.relative_to(folder).as_posix() for p in source.paths] == [
        "img1.png",
        "img2.jpg",
        "IMG3.bmp",
        "img5.png",
        "img10.png",
        "sub/img0.png",
    ]


def test_folder_read_stays_until_moved(folder):
    source = ImageFolderSource(folder)
    first = _frame(source.read())
    assert first.name == "img1.png" and first.index == 0 and first.image[0, 0, 0] == 1
    assert source.read() is first  # same serial: consumers can skip recomputation
    source.next_item()
    second = _frame(source.read())
    assert second.name == "img2.jpg" and second.index == 1 and second.serial > first.serial
    assert second.image[0, 0, 1] > 190  # JPEG green
    source.previous_item()
    back = _frame(source.read())
    assert back.name == "img1.png" and back.serial > second.serial


def test_folder_skips_and_reports_corrupt_file_once(folder):
    source = ImageFolderSource(folder)
    seen = []
    for _ in range(6):
        frame = _frame(source.read())
        seen.append((frame.name, frame.index, int(frame.image[0, 0, 0])))
        source.next_item()
    # img5 is skipped; img10 follows IMG3, then it wraps around to img1.
    assert seen == [
        ("img1.png", 0, 1),
        ("img2.jpg", 1, seen[1][2]),
        ("IMG3.bmp", 2, 3),
        ("img10.png", 4, 10),
        ("img1.png", 0, 1),
        ("img2.jpg", 1, seen[1][2]),
    ]
    assert len(source.errors) == 1  # reported once although passed twice
    assert "img5.png" in source.errors[0] and "\n" not in source.errors[0]


def test_folder_skipping_backwards_continues_backwards(folder):
    source = ImageFolderSource(folder)
    source.previous_item()  # wraps to img10
    assert _frame(source.read()).name == "img10.png"
    source.previous_item()  # img5 is corrupt: keep going back to IMG3, not forward to img10
    assert _frame(source.read()).name == "IMG3.bmp"
    assert source.current_path.name == "IMG3.bmp"


def test_folder_without_cycle_stops_at_the_ends(folder):
    source = ImageFolderSource(folder, cycle=False)
    source.previous_item()
    assert _frame(source.read()).name == "img1.png"
    for _ in range(10):
        source.next_item()
    assert _frame(source.read()).name == "img10.png"


def test_folder_without_cycle_turns_around_at_a_corrupt_last_file(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    _solid(d / "a1.png", (1, 1, 1))
    (d / "a2.png").write_text("corrupt")
    source = ImageFolderSource(d, cycle=False)
    source.next_item()
    assert _frame(source.read()).name == "a1.png"
    assert len(source.errors) == 1


def test_folder_advance_on_read(folder):
    source = ImageFolderSource(folder, advance_on_read=True)
    frames = [_frame(source.read()) for _ in range(6)]
    assert [f.name for f in frames] == [
        "img1.png",
        "img2.jpg",
        "IMG3.bmp",
        "img10.png",
        "img1.png",
        "img2.jpg",
    ]
    serials = [f.serial for f in frames]
    assert serials == sorted(set(serials))  # every read is a new frame


def test_folder_advance_without_cycle_ends_fatally(folder):
    source = ImageFolderSource(folder, advance_on_read=True, cycle=False)
    names = []
    while True:
        result = source.read()
        if isinstance(result, FrameError):
            break
        names.append(result.name)
    assert names == ["img1.png", "img2.jpg", "IMG3.bmp", "img10.png"]
    assert result.fatal and "end of folder" in result.message
    assert isinstance(source.read(), FrameError)


def test_folder_advance_without_cycle_ends_at_a_corrupt_last_file(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    _solid(d / "a1.png", (1, 1, 1))
    (d / "a2.png").write_text("corrupt")
    source = ImageFolderSource(d, advance_on_read=True, cycle=False)
    assert _frame(source.read()).name == "a1.png"
    error = source.read()
    assert isinstance(error, FrameError) and error.fatal and "end of folder" in error.message


def test_folder_with_only_unreadable_images_is_fatal(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    for name in ("a.png", "b.jpg", "c.gif"):
        (d / name).write_text("junk")
    source = ImageFolderSource(d)
    error = source.read()
    assert isinstance(error, FrameError) and error.fatal and "no readable images" in error.message
    assert len(source.errors) == 3
    source.next_item()
    assert source.read().fatal and len(source.errors) == 3  # not retried


def test_empty_or_missing_folder_is_fatal(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    error = ImageFolderSource(tmp_path / "empty").read()
    assert isinstance(error, FrameError) and error.fatal and "no images" in error.message
    error = ImageFolderSource(tmp_path / "missing").read()
    assert isinstance(error, FrameError) and error.fatal and "missing" in error.message
    assert ImageFolderSource(tmp_path / "missing").current_path is None


def test_folder_decodes_lazily_and_lists_fast(tmp_path, monkeypatch):
    d = tmp_path / "many"
    d.mkdir()
    png = (_solid(tmp_path / "one.png", (5, 6, 7))).read_bytes()
    for i in range(3000):
        (d / f"f{i}.png").write_bytes(png)
    calls = []
    real_read = sources.read_image
    monkeypatch.setattr(sources, "read_image", lambda p: calls.append(p) or real_read(p))
    t = time.monotonic()
    source = ImageFolderSource(d)
    listing = time.monotonic() - t
    assert listing < 1.0, listing
    assert calls == []
    assert [p.name for p in source.paths[:3]] == ["f0.png", "f1.png", "f2.png"]
    assert source.paths[-1].name == "f2999.png"
    _frame(source.read())
    _frame(source.read())
    source.next_item()
    _frame(source.read())
    assert [p.name for p in calls] == ["f0.png", "f1.png"]


def test_folder_navigation_from_another_thread(folder):
    source = ImageFolderSource(folder, recursive=True)
    stop = threading.Event()
    problems = []

    def capture():
        while not stop.is_set():
            result = source.read()
            if not isinstance(result, Frame) or result.image.shape != (16, 24, 3):
                problems.append(result)

    thread = threading.Thread(target=capture)
    thread.start()
    try:
        for i in range(200):
            (source.next_item if i % 3 else source.previous_item)()
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive() and problems == []
    # Whether the reader happened to land on the corrupt file depends on timing; at most once.
    assert len(source.errors) <= 1
    # State is consistent afterwards: a read returns the file current_path points at.
    assert _frame(source.read()).name == source.current_path.name
    for _ in range(len(source.paths)):
        source.next_item()
        assert _frame(source.read()).name == source.current_path.name
    assert len(source.errors) == 1


# Video ----------------------------------------------------------------------------------------


def _colour(i):
    """Frame i's RGB colour: red rises, blue falls, so a BGR mix-up is obvious."""
    return (20 * i, 100, 240 - 20 * i)


@pytest.fixture(params=[".mp4", ".avi"])
def video(tmp_path, request):
    path = tmp_path / f"clip{request.param}"
    write_video(path, [np.full((48, 64, 3), _colour(i), np.uint8) for i in range(12)], fps=10)
    return path


def _mean(frame):
    return frame.image.reshape(-1, 3).mean(axis=0)


def test_video_reads_frames_in_order_as_rgb(video):
    with VideoFileSource(video) as source:
        assert source.is_live and source.name == video.name
        assert source.fps == pytest.approx(10) and source.frame_count == 12
        frames = [_frame(source.read()) for _ in range(12)]
    for i, frame in enumerate(frames):
        _assert_frame_image(frame, (48, 64, 3))
        assert frame.index == i and frame.name == video.name
        assert np.abs(_mean(frame) - _colour(i)).max() < 12, (i, _mean(frame))
    assert frames[-1].image[..., 0].mean() > frames[-1].image[..., 2].mean() + 100  # R, not B
    serials = [f.serial for f in frames]
    assert serials == sorted(set(serials))


def test_video_loops_back_to_frame_zero(video):
    source = VideoFileSource(video, loop=True)
    for _ in range(12):
        _frame(source.read())
    wrapped = _frame(source.read())
    assert wrapped.index == 0
    assert np.abs(_mean(wrapped) - _colour(0)).max() < 12
    assert _frame(source.read()).index == 1
    source.close()


def test_video_without_loop_ends_fatally(video):
    source = VideoFileSource(video, loop=False)
    for _ in range(12):
        _frame(source.read())
    for _ in range(2):
        error = source.read()
        assert isinstance(error, FrameError) and error.fatal and "end of video" in error.message
    source.close()


def test_video_next_and_previous_seek_one_second(video):
    source = VideoFileSource(video)
    assert _frame(source.read()).index == 0
    source.next_item()  # 10 fps: one second is 10 frames, from the next frame (1) to 11
    frame = _frame(source.read())
    assert frame.index == 11
    assert np.abs(_mean(frame) - _colour(11)).max() < 12
    source.previous_item()  # from 12 back to 2
    frame = _frame(source.read())
    assert frame.index == 2 and np.abs(_mean(frame) - _colour(2)).max() < 12
    source.previous_item()  # clamps at the start
    assert _frame(source.read()).index == 0
    source.close()


def test_video_realtime_paces_reads(video):
    fast = VideoFileSource(video, realtime=False)
    t = time.monotonic()
    for _ in range(6):
        _frame(fast.read())
    fast_time = time.monotonic() - t
    paced = VideoFileSource(video, realtime=True)
    t = time.monotonic()
    for _ in range(6):
        _frame(paced.read())
    paced_time = time.monotonic() - t
    # 6 reads at 10 fps: 5 intervals of 0.1 s after the first frame.
    assert paced_time >= 0.45, paced_time
    assert fast_time < 0.3, fast_time
    fast.close()
    paced.close()


def test_undecodable_video_is_a_fatal_error_not_an_exception(tmp_path):
    path = tmp_path / "junk.mp4"
    path.write_text("no video here" * 100)
    source = VideoFileSource(path)
    error = source.read()
    assert isinstance(error, FrameError) and error.fatal and "junk.mp4" in error.message
    assert source.fps is None and source.frame_count is None
    source.next_item()  # harmless
    assert source.read().fatal


def test_missing_video_constructed_directly_is_a_fatal_error(tmp_path):
    error = VideoFileSource(tmp_path / "gone.avi").read()
    assert isinstance(error, FrameError) and error.fatal


# Camera ---------------------------------------------------------------------------------------


def test_missing_camera_fails_fast_and_fatally():
    t = time.monotonic()
    source = CameraSource(99)
    assert source.name == "camera 99" and source.is_live and source.frame_count is None
    for _ in range(3):
        error = source.read()
        assert isinstance(error, FrameError) and error.fatal
        assert error.message.startswith("camera 99 is not available")
    source.close()
    assert time.monotonic() - t < 2.0


def test_list_cameras_is_fast():
    t = time.monotonic()
    cameras = list_cameras()
    assert time.monotonic() - t < 2.0
    assert isinstance(cameras, list) and all(isinstance(i, int) and 0 <= i < 8 for i in cameras)
    assert list_cameras(max_index=0) == []


# Pattern --------------------------------------------------------------------------------------


def test_pattern_changes_every_read_and_is_deterministic():
    a, b = PatternSource(), PatternSource()
    assert a.is_live and a.name == "pattern" and a.frame_count is None
    frames_a = [_frame(a.read()) for _ in range(5)]
    frames_b = [_frame(b.read()) for _ in range(5)]
    for i, (fa, fb) in enumerate(zip(frames_a, frames_b)):
        _assert_frame_image(fa, (240, 320, 3))
        assert fa.index == i and fa.name == "pattern"
        np.testing.assert_array_equal(fa.image, fb.image)
    for prev, cur in zip(frames_a, frames_a[1:]):
        assert cur.serial > prev.serial
        assert np.abs(cur.image.astype(int) - prev.image.astype(int)).sum() > 1000
    np.testing.assert_array_equal(a.render(2), frames_a[2].image)
    image = frames_a[0].image
    assert image.std() > 50 and image.max() == 255 and image.min() == 0
    assert image[5, 5].tolist() == [255, 255, 255]  # first colour bar is white
    assert image[5, 316].tolist() == [0, 0, 0]  # last colour bar is black


def test_pattern_size_and_pacing():
    source = PatternSource(width=64, height=48, fps=50)
    t = time.monotonic()
    frames = [_frame(source.read()) for _ in range(6)]
    assert time.monotonic() - t >= 0.09  # 5 intervals of 20 ms
    assert frames[0].image.shape == (48, 64, 3)
    with pytest.raises(ValueError):
        PatternSource(width=0, height=10)


def test_serials_never_repeat_across_sources(tmp_path):
    # A consumer caching by serial must not mistake a new source's first frame for an old one.
    a = ImageFileSource(_solid(tmp_path / "a.png", (1, 1, 1)))
    b = ImageFileSource(_solid(tmp_path / "b.png", (2, 2, 2)))
    assert _frame(a.read()).serial != _frame(b.read()).serial


# open_source ----------------------------------------------------------------------------------


def test_open_source_dispatch(tmp_path, folder):
    image = _solid(tmp_path / "x.JPG", (9, 9, 9))  # suffixes are case-insensitive
    video = tmp_path / "v.avi"
    write_video(video, [np.zeros((16, 16, 3), np.uint8)] * 2, fps=5)
    cases = [
        ("pattern", PatternSource),
        (" Pattern ", PatternSource),
        ("camera", CameraSource),
        ("camera:3", CameraSource),
        (str(folder), ImageFolderSource),
        (folder, ImageFolderSource),
        (image, ImageFileSource),
        (str(video), VideoFileSource),
    ]
    for spec, cls in cases:
        source = open_source(spec)
        assert type(source) is cls, spec
        assert isinstance(source, FrameSource)
        source.close()
    assert open_source("camera").index == 0 and open_source("camera:3").index == 3
    assert open_source("pattern", width=32, height=24).read().image.shape == (24, 32, 3)
    assert open_source(folder, advance_on_read=True).advance_on_read


def test_open_source_errors(tmp_path):
    missing = tmp_path / "missing.png"
    with pytest.raises(DeepvisError, match="not found") as e:
        open_source(missing)
    assert str(missing) in str(e.value)
    other = tmp_path / "data.csv"
    other.write_text("a,b\n")
    with pytest.raises(DeepvisError) as e:
        open_source(other)
    assert str(e.value) == (
        f"unsupported input {other}: "
        "expected an image, a folder of images, a video, camera:N or pattern"
    )
    with pytest.raises(DeepvisError, match="camera:N"):
        open_source("camera:front")


def test_open_source_does_not_raise_for_bad_contents(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("x")
    source = open_source(bad)  # exists with an image suffix: the problem comes as a value
    assert source.read().fatal
