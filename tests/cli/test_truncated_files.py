"""Files cut short: refused by default (exit 2, one line naming the file and the opt-in); with
--allow-truncated read as the part present, said on one ``warning:`` line, and the answer is
the one the present part gives."""

import io
import json

import numpy as np
from PIL import Image
from scipy.io import wavfile

from deepvis.cli import _run
from deepvis.io.images import read_image
from deepvis.io.truncation import reading_truncated


def _run_captured(capsys, argv):
    code = _run([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def test_a_cut_wav_is_refused_or_read_as_its_present_part(tmp_path, capsys):
    rate = 8000
    t = np.arange(4 * 1024) / rate
    samples = (0.5 * np.sin(2 * np.pi * 300 * t) * 32767).astype(np.int16)
    wavfile.write(tmp_path / "full.wav", rate, samples)
    full = (tmp_path / "full.wav").read_bytes()
    present = 1500  # samples left after the cut: fewer than the model's window of 1024 x 4
    (tmp_path / "cut.wav").write_bytes(full[:44 + 2 * present + 1])
    wavfile.write(tmp_path / "part.wav", rate, samples[:present])  # the same samples, a whole file
    model = ["--model", "signals_wavenet"]

    code, out, err = _run_captured(capsys, ["predict", *model, "--input", tmp_path / "cut.wav", "--json"])
    assert code == 2 and out == "" and len(err) == 1
    assert err[0].startswith("error: ") and "cut.wav" in err[0] and "--allow-truncated" in err[0]
    assert "1,500 samples present" in err[0]

    code, out, err = _run_captured(capsys, ["predict", *model, "--input", tmp_path / "cut.wav", "--json",
                                            "--allow-truncated"])
    assert code == 0 and len(err) == 1 and err[0].startswith("warning: ") and "cut.wav" in err[0]
    allowed = json.loads(out)
    code, out, _ = _run_captured(capsys, ["predict", *model, "--input", tmp_path / "part.wav", "--json"])
    assert code == 0
    whole_part = json.loads(out)
    assert [p["index"] for p in allowed["predictions"]] == [p["index"] for p in whole_part["predictions"]]
    assert np.allclose([p["score"] for p in allowed["predictions"]],
                       [p["score"] for p in whole_part["predictions"]], atol=1e-6)


def test_a_cut_picture_is_refused_or_read_with_its_present_rows(tmp_path, capsys):
    picture = (np.random.default_rng(3).random((96, 64, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "PNG", compress_level=0)  # rows stored in order, uncompressed
    data = buffer.getvalue()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[:len(data) // 2])

    code, out, err = _run_captured(capsys, ["predict", "--model", "digits_cnn", "--input", cut])
    assert code == 2 and out == "" and len(err) == 1 and "cut.png" in err[0] and "--allow-truncated" in err[0]

    code, out, err = _run_captured(capsys, ["predict", "--model", "digits_cnn", "--input", cut, "--allow-truncated"])
    assert code == 0 and "rank" in out
    assert len(err) == 1 and err[0].startswith("warning: ") and "cut.png" in err[0]

    said = []
    with reading_truncated(said.append):
        read = read_image(cut)
    assert read.shape == picture.shape and len(said) == 1
    # About the first half of the rows survived the cut: they are the picture's own.
    assert np.array_equal(read[:40], picture[:40])
    assert not np.array_equal(read[-8:], picture[-8:])
