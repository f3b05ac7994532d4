"""Receptive fields measured by gradients against the layer graph, and causality, on networks
written in the test: a WaveNet-like stack of dilated causal convolutions, a strided 2-D chain
and a PixelCNN's masked convolutions with their blind spot."""

import numpy as np
import pytest
import torch
from torch import nn

from deepvis.autoregressive.receptive import (all_positions, causality, example_input, input_dims, measured_fields,
                                              theoretical_field)
from deepvis.core.probe import Probe
from deepvis.errors import DeepvisError

from testnets import CausalConv1d, MaskedConv2d


def causal_stack(kernel: int, dilations) -> nn.Sequential:
    layers, c = [], 1
    for d in dilations:
        layers += [CausalConv1d(c, 4, kernel, dilation=d), nn.Tanh()]
        c = 4
    return nn.Sequential(*layers)


@pytest.mark.parametrize("kernel, dilations", [(2, [1, 2, 4, 8, 16]), (3, [1, 2, 4, 1, 2, 4])])
def test_dilated_causal_stack(kernel, dilations):
    torch.manual_seed(0)
    net = causal_stack(kernel, dilations).eval()
    x = example_input(net, (96,))
    probe = Probe(net, x[:1])
    last = f"{len(dilations) * 2 - 1}"
    expected = 1 + sum((kernel - 1) * d for d in dilations)
    positions = [(t,) for t in range(96)]
    fields = measured_fields(net, probe, x, last, positions)
    for (t,), f in zip(positions, fields):
        covered = np.flatnonzero(f)
        assert covered.max() == t  # depends on itself ...
        if t >= expected - 1:  # ... and, away from the start, exactly the field before it
            assert len(covered) == expected and covered.min() == t - expected + 1
    verdict = causality(fields, positions)
    assert verdict.causal and not verdict.strict
    assert theoretical_field(net, probe, last).size == (expected,)
    assert input_dims(net) == 1


def test_strided_2d_chain_matches_the_theory_inside():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.Tanh(), nn.Conv2d(3, 3, 3, padding=2, dilation=2),
                        nn.Tanh()).eval()
    x = example_input(net, (32, 32))
    probe = Probe(net, x[:1])
    theory = theoretical_field(net, probe, "3")
    assert theory.size == (3 + 4 * 2, 3 + 4 * 2) and theory.convolutions == 2
    field = measured_fields(net, probe, x, "3", [(8, 8)])[0]
    ys, xs = np.nonzero(field)
    assert (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == theory.size
    assert not causality(field[None], [(16, 16)]).causal  # a plain convolution looks ahead


def test_pixelcnn_masks_are_strictly_causal_with_a_blind_spot():
    torch.manual_seed(0)
    net = nn.Sequential(MaskedConv2d(1, 8, 5, padding=2, mask_type="A"), nn.ReLU(),
                        *[m for _ in range(3) for m in (MaskedConv2d(8, 8, 3, padding=1), nn.ReLU())]).eval()
    x = example_input(net, (10, 10))
    probe = Probe(net, x[:1])
    positions = all_positions((10, 10))
    fields = measured_fields(net, probe, x, "7", positions)
    assert causality(fields, positions).strict
    field = fields[positions.index((6, 5))]
    earlier = np.zeros((10, 10), bool)
    earlier.reshape(-1)[:6 * 10 + 5] = True
    missed = earlier & ~field
    # The blind spot: pixels above and to the right that no stack of masked convolutions reaches.
    assert missed[5, 8] and missed[4, 9] and not missed[5, 4] and not missed[6, 4]


def test_a_layer_without_positions_is_refused():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    x = example_input(net, (8, 8))
    probe = Probe(net, x[:1])
    with pytest.raises(DeepvisError, match="has no pixels"):
        measured_fields(net, probe, x, "2", [(0, 0)])
