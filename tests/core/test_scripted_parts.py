"""A TorchScript part inside an eager model is one opaque layer, never a crash (issue 29, item 5):
its insides run compiled, so its output is what the probe captures, as its parent received it."""

import pytest
import torch

from deepvis.core.probe import Probe
from testnets import ScriptedPart

# torch 2.14 warns on every torch.jit call; the scripted part is loaded on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:FutureWarning")


def test_a_scripted_part_is_an_opaque_layer_with_its_real_output():
    torch.manual_seed(0)
    model = ScriptedPart().eval()
    x = torch.randn(1, 1, 32)
    probe = Probe(model, x)
    names = probe.names()
    assert "vad" in names and not any(n.startswith("vad.") for n in names)
    assert probe.layer("vad").type_name == "RecursiveScriptModule" and probe.layer("vad").shape == (8, 28)
    with torch.no_grad():
        _, acts = probe.capture(x, ["pre", "vad", "head"])
        expected = model.vad(model.pre(x))
    torch.testing.assert_close(acts["vad"], expected, rtol=0, atol=0)
    torch.testing.assert_close(probe.capture_until(x, "vad").detach(), expected, rtol=0, atol=0)
    # The global hook that reached it is gone: a later forward runs no hook of ours.
    assert not torch.nn.modules.module._global_forward_hooks


def test_info_of_a_model_with_a_scripted_part(capsys):
    from deepvis.cli import main

    assert main(["info", "--model", "testnets:ScriptedPart", "--input-size", "32", "--sample-rate", "8000"]) == 0
    out = capsys.readouterr().out
    assert "vad" in out and "RecursiveScriptModule" in out
