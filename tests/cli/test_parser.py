"""The parser: every command registered by its family module, and no torch to build it."""

import subprocess
import sys

import pytest

EXPECTED = ["gui", "models", "info", "predict", "fetch", "activations", "filters", "saliency", "segment", "embed", "dream",
            "visualize-unit", "profile-units", "interpolate", "segment3d", "receptive-field", "sample", "atlas",
            "doctor", "compare", "match", "graph", "bench"]


def test_building_the_parser_imports_no_torch_and_lists_every_command():
    # In a fresh interpreter: this test process has torch loaded already.
    script = (
        "import sys\n"
        "from deepvis.cli import build_parser\n"
        "parser = build_parser()\n"
        "sub = next(a for a in parser._actions if a.dest == 'command')\n"
        "print(','.join(sub.choices))\n"
        "heavy = [m for m in ('torch', 'torchvision', 'captum', 'PySide6', 'sklearn', 'cv2') if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    commands, heavy = proc.stdout.split()
    assert commands.split(",") == EXPECTED
    assert heavy == "none"


@pytest.mark.slow
def test_help_of_every_command_works_without_torch():
    for command in EXPECTED:
        script = (f"import sys\nfrom deepvis.cli import main\n"
                  f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit as exc:\n    assert exc.code == 0\n"
                  f"assert 'torch' not in sys.modules, {command!r}\n")
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, (command, proc.stderr[-800:])
        assert "usage: deepvis" in proc.stdout


@pytest.mark.slow
def test_a_bundled_model_opens_without_importing_torchvision():
    # torchvision imports torch's compiler: 1.2 s of every command on a bundled model, until
    # the zoo's torchvision entries were made when first asked for.
    script = (
        "import sys, json\nfrom deepvis.cli import main\n"
        "assert main(['info', '--model', 'digits_cnn', '--json']) == 0\n"
        "assert 'torchvision' not in sys.modules, 'a bundled model imported torchvision'\n"
        "from deepvis.core.zoo import get_entry, zoo_names\n"
        "assert 'resnet18' in zoo_names() and 'torchvision' not in sys.modules\n"
        "print(json.dumps(list(get_entry('ResNet18').spec.shape)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-800:]
    assert proc.stdout.strip().splitlines()[-1] == "[3, 224, 224]"  # torchvision's entry, read when asked for
