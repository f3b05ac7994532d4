"""Receptive fields measured by gradients against the layer graph, and causality, on networks
written in the test: a WaveNet-like stack of dilated causal convolutions, a strided 2-D chain
and a PixelCNN's masked convolutions with their blind spot; the theoretical field placed as a
box, against nets where the measured field must fill it exactly."""

import numpy as np
import pytest
import torch
from torch import nn

from deepvis.autoregressive.receptive import (all_positions, causality, example_input, input_dims, measured_fields,
                                              theoretical_box, theoretical_field, theoretical_fields)
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


class StaticSamePaddingConv2d(nn.Conv2d):
    """TensorFlow's "same" padding as EfficientNet ports do it: a ZeroPad2d child, more on the far
    side when the stride is 2."""

    def __init__(self, *args, pad=(0, 1, 0, 1), **kwargs):
        super().__init__(*args, **kwargs)
        self.static_padding = nn.ZeroPad2d(pad)

    def forward(self, x):
        return super().forward(self.static_padding(x))


def positive_linear(net: nn.Module) -> nn.Module:
    """All weights and biases positive and no rectifiers: every input under the chain's kernels
    reaches the output, so the measured field is the whole theoretical box."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand_like(p) + 0.1)
    return net.eval()


def box_mask(theory, position, shape) -> np.ndarray:
    mask = np.zeros(shape, bool)
    box = theoretical_box(theory, position)
    mask[tuple(slice(max(lo, 0), min(hi, n - 1) + 1) for (lo, hi), n in zip(box, shape))] = True
    return mask


CHAINS = {
    # kernels 3 and 3, the second with stride 2
    "stride": lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, stride=2, padding=1)),
    # a dilated convolution and a pool after the stride: jumps of 2 and 4
    "dilation and pool": lambda: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, stride=2, padding=1),
                                               nn.Conv2d(2, 2, 3, padding=2, dilation=2), nn.AvgPool2d(2)),
    # padding done in a convolution's forward, lopsided, as EfficientNet's stem
    "static same padding": lambda: nn.Sequential(StaticSamePaddingConv2d(1, 2, 3, stride=2),
                                                 StaticSamePaddingConv2d(2, 2, 5, pad=(2, 2, 2, 2))),
    # a padding layer of its own before the first convolution: every field moves up and left
    "padding layer": lambda: nn.Sequential(nn.ZeroPad2d((2, 0, 1, 0)), nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3)),
}


@pytest.mark.parametrize("chain", CHAINS)
def test_the_theoretical_box_is_the_field_of_a_positive_linear_chain(chain):
    net = positive_linear(CHAINS[chain]())
    x = example_input(net, (18, 18))
    probe = Probe(net, x[:1])
    last = probe.layers[-2].name  # the last module; "output" is the same tensor
    theory = theoretical_field(net, probe, last, x[:1])
    grid = probe.layer(last).shape[1:]
    positions = all_positions(grid)
    fields = measured_fields(net, probe, x, last, positions)
    for pos, field in zip(positions, fields):
        np.testing.assert_array_equal(field, box_mask(theory, pos, (18, 18)), err_msg=f"{chain} at {pos}")
    # Away from the borders nothing is clipped: the field has the theory's size exactly.
    inside = [i for i, pos in enumerate(positions)
              if all(lo >= 0 and hi < 18 for lo, hi in theoretical_box(theory, pos))]
    assert inside and all(int(fields[i].sum()) == theory.size[0] * theory.size[1] for i in inside)


def test_the_box_of_the_stride_chain_by_hand():
    net = CHAINS["stride"]()
    x = example_input(net, (16, 16))
    probe = Probe(net, x[:1])
    theory = theoretical_field(net, probe, "1")
    # 3 + 2 = 5 wide, stride 2, and output (0, 0) centred on input (0, 0): padding 1 twice
    assert (theory.size, theory.jump, theory.start) == ((5, 5), (2, 2), (0.0, 0.0))
    assert theoretical_box(theory, (3, 5)) == ((4, 8), (8, 12))


def test_a_rectified_field_lies_inside_the_box():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
                        nn.Conv2d(4, 4, 5, padding=2), nn.ReLU()).eval()
    x = example_input(net, (32, 32))
    probe = Probe(net, x[:1])
    theory = theoretical_field(net, probe, "5", x[:1])
    field = measured_fields(net, probe, x, "5", [(8, 7)])[0]
    box = box_mask(theory, (8, 7), (32, 32))
    assert field.any() and not (field & ~box).any()
    assert theory.size == (13, 13) and theoretical_box(theory, (8, 7)) == ((10, 22), (8, 20))


def test_a_causal_stack_box_ends_at_its_own_time_step():
    """Causal convolutions pad on the left inside their forward: the dry run finds it, so the
    box ends at t instead of starting there."""
    torch.manual_seed(0)
    dilations = [1, 2, 4, 8]
    net = positive_linear(causal_stack(2, dilations))
    x = example_input(net, (64,))
    probe = Probe(net, x[:1])
    layers = [str(2 * i) for i in range(len(dilations))]
    theories = theoretical_fields(net, probe, layers, x[:1])
    reach = 0
    for layer, d in zip(layers, dilations):
        reach += d
        assert theoretical_box(theories[layer], (40,)) == ((40 - reach, 40),)
    field = measured_fields(net, probe, x, layers[-1], [(40,)])[0]
    assert (np.flatnonzero(field).min(), np.flatnonzero(field).max()) == (40 - 15, 40)
    # Without an input to run, only declared padding is known: the size holds, the place does not.
    blind = theoretical_field(net, probe, layers[-1])
    assert blind.size == theories[layers[-1]].size == (16,)
