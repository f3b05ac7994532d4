"""Causality over many positions (issue 30): judged chunk by chunk with no field kept, and past
the work cap at the borders and a seeded sample, with the verdict of the exhaustive check on
sizes small enough for both; sampling's work is capped before it starts."""

import numpy as np
import pytest
import torch
from torch import nn

from deepvis.autoregressive import receptive
from deepvis.autoregressive.receptive import (all_positions, causality, causality_positions, check_causality,
                                              example_input, measured_fields)
from deepvis.core.probe import Probe
from testnets import CausalConv1d, MaskedConv2d, MaskedStack


def _nets():
    torch.manual_seed(0)
    leaky_mask = MaskedConv2d(1, 4, 3, padding=1)
    leaky_mask.mask[:, :, 2, 2] = 1  # one tap below-right: sees a later pixel
    return {
        "masked (strictly causal)": (MaskedStack().eval(), (12, 12), "7"),
        "leaky mask": (nn.Sequential(leaky_mask, nn.ReLU()).eval(), (12, 12), "1"),
        "plain conv (not causal)": (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh()).eval(), (12, 12), "1"),
        "causal 1-D": (nn.Sequential(CausalConv1d(1, 4, 3, dilation=2), nn.Tanh()).eval(), (200,), "1"),
        "centred 1-D (not causal)": (nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.Tanh()).eval(), (200,), "1"),
    }


@pytest.mark.parametrize("name", list(_nets()))
def test_the_sampled_check_gives_the_exhaustive_verdict(name, monkeypatch):
    net, size, layer = _nets()[name]
    x = example_input(net, size)
    probe = Probe(net, x[:1])
    positions = all_positions(size)
    exhaustive = causality(measured_fields(net, probe, x, layer, positions), positions)
    streamed = check_causality(net, probe, x, layer)  # every position: fits the cap
    assert (streamed.causal, streamed.strict, streamed.violations, streamed.first) == (
        exhaustive.causal, exhaustive.strict, exhaustive.violations, exhaustive.first)
    assert streamed.checked == streamed.total == len(positions)
    # A cap of 16 queries: the borders and a seeded sample, the same verdict.
    monkeypatch.setattr(receptive, "MAX_CAUSALITY_WORK", 16 * len(positions))
    sampled = check_causality(net, probe, x, layer)
    assert sampled.checked == 16 < sampled.total
    assert (sampled.causal, sampled.strict) == (exhaustive.causal, exhaustive.strict)
    assert causality_positions(size) == causality_positions(size)  # seeded: the same check every run


def test_the_sample_holds_the_corners_and_spreads_inside(monkeypatch):
    monkeypatch.setattr(receptive, "MAX_CAUSALITY_WORK", 64 * 4096)
    chosen = causality_positions((64, 64))
    assert len(chosen) == 64 and len(set(chosen)) == 64
    assert {(0, 0), (63, 63)} <= set(chosen)
    inside = [p for p in chosen if 0 < p[0] < 63 and 0 < p[1] < 63]
    assert len(inside) >= 30 and np.ptp([p[0] for p in inside]) > 32  # spread, not one corner


def test_sampling_work_is_capped_before_it_starts(capsys, tmp_path):
    from deepvis.autoregressive.sampling import MAX_WORK, sampling_work
    from deepvis.cli import main

    assert sampling_work((8, 8), 16) == 64 * 64 * 16 <= MAX_WORK  # the default draws run
    assert main(["sample", "--model", "digits_pixelcnn", "--size", "128x128", "--count", "2",
                 "--out", str(tmp_path / "never.png")]) == 2
    err = capsys.readouterr().err
    assert "16,384 forward passes" in err and "lower --size or --count" in err
    assert list(tmp_path.iterdir()) == []
