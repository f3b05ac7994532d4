"""Reading and writing image and video files (deepvis.io.images)."""

import time

import numpy as np
import pytest
from PIL import Image, ImageFile

from deepvis.errors import DeepvisError
from deepvis.io.images import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    quiet_cv2,
    read_image,
    write_image,
    write_video,
)
from deepvis.resources import sample_images


def _noise(h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _assert_rgb(a, shape=None):
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    assert a.flags.c_contiguous
    if shape is not None:
        assert a.shape == shape


# Reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff", ".webp"])
def test_lossless_formats_round_trip_exactly(tmp_path, suffix):
    a = _noise()
    path = tmp_path / f"noise{suffix}"
    if suffix == ".webp":
        Image.fromarray(a).save(path, lossless=True)
    else:
        Image.fromarray(a).save(path)
    b = read_image(path)
    _assert_rgb(b, (48, 64, 3))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_pure_red_reads_as_red_not_bgr(tmp_path, suffix):
    path = tmp_path / f"red{suffix}"
    Image.new("RGB", (32, 16), (255, 0, 0)).save(path)
    a = read_image(path)
    _assert_rgb(a, (16, 32, 3))
    r, g, b = a.reshape(-1, 3).mean(axis=0)
    assert r > 240 and g < 15 and b < 15


def test_jpeg_is_close_to_the_original(tmp_path):
    a = np.zeros((64, 64, 3), np.uint8)
    a[:, :32] = (200, 30, 60)
    a[:, 32:] = (10, 120, 250)
    path = tmp_path / "halves.jpg"
    Image.fromarray(a).save(path, quality=95)
    b = read_image(path).astype(int)
    assert np.abs(b[8:56, 4:28] - (200, 30, 60)).max() <= 6
    assert np.abs(b[8:56, 36:60] - (10, 120, 250)).max() <= 6


def test_grayscale_expands_to_three_equal_channels(tmp_path):
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)
    a = read_image(path)
    _assert_rgb(a, (16, 16, 3))
    for c in range(3):
        np.testing.assert_array_equal(a[:, :, c], gray)


def test_one_bit_image(tmp_path):
    im = Image.new("1", (8, 4), 0)
    im.putpixel((3, 2), 1)
    path = tmp_path / "bits.png"
    im.save(path)
    a = read_image(path)
    _assert_rgb(a, (4, 8, 3))
    assert a[2, 3].tolist() == [255, 255, 255] and a.sum() == 3 * 255


def test_sixteen_bit_gray_is_scaled_not_clipped(tmp_path):
    # Pillow's own convert("RGB") would turn every value above 255 into 255.
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    a = read_image(path)
    _assert_rgb(a, (1, 4, 3))
    assert a[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (a[..., 0] == a[..., 2]).all()


def test_sixteen_bit_tiff_gradient_keeps_its_range(tmp_path):
    ramp = np.linspace(0, 65535, 100).astype(np.uint16).reshape(10, 10)
    path = tmp_path / "ramp.tif"
    Image.fromarray(ramp).save(path)
    a = read_image(path)[..., 0]
    assert a.min() == 0 and a.max() == 255
    assert np.all(np.diff(a.ravel().astype(int)) >= 0)
    assert 120 <= a.ravel()[50] <= 135


def test_float_tiff_in_unit_range(tmp_path):
    f = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    path = tmp_path / "float.tif"
    Image.fromarray(f).save(path)
    assert read_image(path)[0, :, 1].tolist() == [0, 128, 255]


def test_rgba_composites_on_black(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[:, :, :3] = (200, 100, 50)
    rgba[:, 0, 3] = 255  # opaque: unchanged
    rgba[:, 1, 3] = 0  # transparent: black, whatever colour is stored underneath
    rgba[:, 2, 3] = 128  # half: about half
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    a = read_image(path)
    _assert_rgb(a, (2, 3, 3))
    assert a[0, 0].tolist() == [200, 100, 50]
    assert a[0, 1].tolist() == [0, 0, 0]
    assert a[0, 2].tolist() == [100, 50, 25]


def test_gray_with_alpha(tmp_path):
    la = Image.new("LA", (4, 4), (180, 255))
    path = tmp_path / "la.png"
    la.save(path)
    assert read_image(path)[0, 0].tolist() == [180, 180, 180]


def test_palette_image_uses_palette_colours(tmp_path):
    im = Image.new("P", (4, 2))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (253 * 3))
    im.putdata([0, 1, 2, 0, 2, 1, 0, 0])
    path = tmp_path / "pal.png"
    im.save(path)
    a = read_image(path)
    _assert_rgb(a, (2, 4, 3))
    assert a[0, 0].tolist() == [255, 0, 0]
    assert a[0, 1].tolist() == [0, 255, 0]
    assert a[0, 2].tolist() == [0, 0, 255]
    assert a[1, 0].tolist() == [0, 0, 255]


def test_palette_with_transparent_index(tmp_path):
    im = Image.new("P", (2, 1))
    im.putpalette([0, 255, 0, 255, 255, 255] + [0] * (254 * 3))
    im.putdata([0, 1])
    path = tmp_path / "trans.png"
    im.save(path, transparency=1)
    a = read_image(path)
    assert a[0, 0].tolist() == [0, 255, 0]
    assert a[0, 1].tolist() == [0, 0, 0]


def test_gif_reads_first_frame(tmp_path):
    red = Image.new("RGB", (8, 8), (255, 0, 0))
    blue = Image.new("RGB", (8, 8), (0, 0, 255))
    path = tmp_path / "anim.gif"
    red.save(path, save_all=True, append_images=[blue], duration=100)
    assert Image.open(path).n_frames == 2
    a = read_image(path)
    _assert_rgb(a, (8, 8, 3))
    assert a[4, 4].tolist() == [255, 0, 0]


def test_cmyk_jpeg_reads_as_rgb(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path)  # no black ink, full M+Y = red
    a = read_image(path)
    _assert_rgb(a, (16, 16, 3))
    r, g, b = a.reshape(-1, 3).mean(axis=0)
    assert r > 230 and g < 30 and b < 30


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)  # landscape as stored
    stored[:5, :5] = (255, 0, 0)  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.png"
    Image.fromarray(stored).save(path, exif=exif)
    a = read_image(path)
    _assert_rgb(a, (40, 20, 3))  # portrait once upright
    # A clockwise turn moves the top-left corner to the top-right.
    assert a[:5, -5:, 0].min() == 255
    assert a[:5, :5, 0].max() == 0


def test_accepts_str_paths(tmp_path):
    path = tmp_path / "s.png"
    Image.new("RGB", (3, 2), (1, 2, 3)).save(path)
    assert read_image(str(path))[1, 2].tolist() == [1, 2, 3]


def test_truncation_setting_is_left_strict():
    # read_image relies on Pillow refusing truncated files rather than padding them grey.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_bundled_sample_photos_read_as_rgb():
    paths = sample_images()
    assert len(paths) >= 4
    for path in paths:
        a = read_image(path)
        _assert_rgb(a)
        assert a.shape[0] >= 64 and a.shape[1] >= 64
        assert a.std() > 10, f"{path.name} looks blank"


# Read errors ------------------------------------------------------------------------------


def _assert_error_names_file(excinfo, path, *words):
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message
    for word in words:
        assert word in message, message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.png"
    with pytest.raises(DeepvisError) as e:
        read_image(path)
    _assert_error_names_file(e, path, "no such file")


def test_directory(tmp_path):
    folder = tmp_path / "dir.png"
    folder.mkdir()
    with pytest.raises(DeepvisError) as e:
        read_image(folder)
    _assert_error_names_file(e, folder, "folder")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(DeepvisError) as e:
        read_image(path)
    _assert_error_names_file(e, path, "empty")


def test_text_file_named_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n" * 10)
    with pytest.raises(DeepvisError) as e:
        read_image(path)
    _assert_error_names_file(e, path, "not an image")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_files_fail(tmp_path, suffix):
    whole = tmp_path / f"whole{suffix}"
    Image.fromarray(_noise(128, 128)).save(whole)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    assert read_image(whole).shape == (128, 128, 3)
    with pytest.raises(DeepvisError) as e:
        read_image(cut)
    _assert_error_names_file(e, cut, "truncated")


def test_corrupted_png_body_fails(tmp_path):
    path = tmp_path / "flipped.png"
    Image.fromarray(_noise(64, 64)).save(path)
    data = bytearray(path.read_bytes())
    data[100:140] = bytes(40)  # zero out part of the compressed data
    path.write_bytes(bytes(data))
    with pytest.raises(DeepvisError) as e:
        read_image(path)
    _assert_error_names_file(e, path)


# Writing ----------------------------------------------------------------------------------


def test_write_rgb_round_trip_and_creates_parents(tmp_path):
    a = _noise()
    path = tmp_path / "a" / "b" / "out.png"
    write_image(path, a)
    np.testing.assert_array_equal(read_image(path), a)


def test_write_gray(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    path = tmp_path / "gray.png"
    write_image(path, gray)
    assert Image.open(path).mode == "L"
    np.testing.assert_array_equal(read_image(path)[:, :, 1], gray)


def test_write_rgba_png_keeps_alpha(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0
    path = tmp_path / "alpha.png"
    write_image(path, rgba)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), rgba)


def test_write_rgba_jpeg_matches_reading_it_as_png(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = (240, 120, 40)
    rgba[..., 3] = 128
    write_image(tmp_path / "x.png", rgba)
    write_image(tmp_path / "x.jpg", rgba)
    from_png = read_image(tmp_path / "x.png").astype(int)
    from_jpg = read_image(tmp_path / "x.jpg").astype(int)
    assert from_png[0, 0].tolist() == [120, 60, 20]
    assert np.abs(from_jpg - from_png).max() <= 4


@pytest.mark.parametrize("suffix", sorted(IMAGE_SUFFIXES))
def test_write_every_image_suffix(tmp_path, suffix):
    a = np.zeros((8, 8, 3), np.uint8)
    a[:, :4] = (250, 0, 0)
    a[:, 4:] = (0, 0, 250)
    path = tmp_path / f"out{suffix.upper()}"  # suffix match is case-insensitive
    write_image(path, a)
    b = read_image(path).astype(int)
    assert b[4, 1, 0] > 200 and b[4, 1, 2] < 50
    assert b[4, 6, 2] > 200 and b[4, 6, 0] < 50


def test_write_unsupported_suffix(tmp_path):
    with pytest.raises(DeepvisError, match=r"unsupported suffix '\.xyz'"):
        write_image(tmp_path / "out.xyz", _noise())
    with pytest.raises(DeepvisError, match="unsupported suffix"):
        write_image(tmp_path / "no_suffix", _noise())


def test_write_unwritable_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DeepvisError) as e:
        write_image(blocker / "out.png", _noise())
    assert "cannot write image" in str(e.value) and str(blocker) in str(e.value)


def test_write_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_image(tmp_path / "f.png", np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="shape|\\(H, W"):
        write_image(tmp_path / "f.png", np.zeros((4, 4, 2), np.uint8))


# Video ------------------------------------------------------------------------------------


def test_suffix_sets():
    assert {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"} == IMAGE_SUFFIXES
    assert {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"} == VIDEO_SUFFIXES
    assert not IMAGE_SUFFIXES & VIDEO_SUFFIXES


def _colour(i):
    """A distinct RGB colour per frame, with red and blue moving in opposite directions."""
    return (20 * i, 100, 240 - 20 * i)


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_write_video_frames_order_and_colour(tmp_path, suffix):
    cv2 = quiet_cv2()
    frames = [np.full((48, 64, 3), _colour(i), np.uint8) for i in range(12)]
    path = tmp_path / "sub" / f"clip{suffix}"
    assert write_video(path, frames, fps=10) == 12
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10)
    means = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        assert bgr.shape == (48, 64, 3)
        means.append(bgr[..., ::-1].reshape(-1, 3).mean(axis=0))
    cap.release()
    assert len(means) == 12
    for i, mean in enumerate(means):
        assert np.abs(mean - _colour(i)).max() < 12, (i, mean)


def test_write_video_accepts_gray_frames(tmp_path):
    frames = (np.full((32, 32), 50 * i, np.uint8) for i in range(4))  # a generator
    assert write_video(tmp_path / "g.avi", frames, fps=5) == 4


def test_write_video_errors(tmp_path):
    frame = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(DeepvisError, match="unsupported suffix"):
        write_video(tmp_path / "x.mkv", [frame], fps=10)
    with pytest.raises(DeepvisError, match="no frames"):
        write_video(tmp_path / "x.mp4", [], fps=10)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DeepvisError, match="cannot write video"):
        write_video(blocker / "x.mp4", [frame], fps=10)
    with pytest.raises(ValueError, match="expected 16x16"):
        write_video(tmp_path / "y.mp4", [frame, np.zeros((8, 8, 3), np.uint8)], fps=10)
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "z.mp4", [frame], fps=0)


def test_quiet_cv2_is_cached_and_fast():
    t = time.monotonic()
    assert quiet_cv2() is quiet_cv2()
    assert time.monotonic() - t < 5
