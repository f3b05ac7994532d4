"""A model's dataflow graph, recorded from one forward pass: digits_cnn's is exactly its
modules in the order they run; resnet18's has its 8 residual additions, each with the block's
last BatchNorm and the shortcut as inputs; a ViT's blocks collapse into one group; models that
torch.fx cannot trace (data-dependent control flow, a TorchScript part) still get the graph of
what ran; the layout puts every edge downward and no two boxes of a row over each other."""

import json

import pytest
import torch
import torch.fx
from torch import nn

from clirun import run_command
from deepvis.core.loading import load_model
from deepvis.core.probe import Probe
from deepvis.graph.draw import arrange
from deepvis.graph.fold import folded, repeated_blocks
from deepvis.graph.record import record_graph
from testnets import RegisterViT, ScriptedPart


def _modules_run(module, x):
    """(path of each leaf module, in the order its forward finished), by hooks of our own."""
    from deepvis.core.probe import hook_forward, hookable_modules

    order = []
    handles = [hook_forward(m, lambda m, i, o, p=p: order.append(p)) for p, m in hookable_modules(module)
               if not list(m.children()) or isinstance(m, torch.jit.ScriptModule)]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return order


def test_digits_cnn_is_its_modules_in_order_and_a_chain(digits):
    graph = record_graph(digits.module, digits.example_input())
    modules = [n for n in graph.nodes if n.op == "module"]
    assert [n.name for n in modules] == [p for p, m in digits.module.named_modules() if not list(m.children())]
    assert [n.op for n in graph.nodes] == ["input"] + ["module"] * len(modules) + ["output"]
    assert graph.edges == [(k, k + 1) for k in range(len(graph.nodes) - 1)]
    probe = Probe(digits.module, digits.example_input())
    for node in modules:  # the probe's layer of the same name has the node's shape
        assert probe.layer(node.layer).shape == node.shape
        assert node.params == sum(p.numel() for p in dict(digits.module.named_modules())[node.name].parameters())


def test_resnet18_has_8_residual_additions_with_both_inputs():
    model = load_model("resnet18", weights="none")
    graph = record_graph(model.module, model.example_input())
    names = {n.id: n.name for n in graph.nodes}
    adds = [n for n in graph.nodes if n.type == "add"]
    assert len(adds) == 8
    for k, add in enumerate(adds):
        stage, block = 1 + k // 2, k % 2
        inputs = sorted(names[s] for s, t in graph.edges if t == add.id)
        if block == 0 and stage > 1:
            shortcut = f"layer{stage}.0.downsample.1"
        elif block == 0:
            shortcut = "maxpool"
        else:
            shortcut = f"layer{stage}.0.relu#1"
        assert inputs == sorted([f"layer{stage}.{block}.bn2", shortcut]), (add.name, inputs)
        assert add.group == f"layer{stage}.{block}"
    # Collapsed, each block is one node; the stages chain them.
    shown = folded(graph, repeated_blocks(graph))
    assert [n.name for n in shown.nodes if n.op == "group"] == [f"layer{s}.{b}" for s in range(1, 5) for b in (0, 1)]
    assert len(shown.nodes) == 17 and not any(n.type == "add" for n in shown.nodes)


def test_a_vits_blocks_collapse_into_one_group_and_expand_again():
    model = load_model("digits_vit")
    graph = record_graph(model.module, model.example_input())
    with pytest.raises(Exception):  # torch.fx cannot trace it: the graph is what ran
        torch.fx.symbolic_trace(model.module)
    assert repeated_blocks(graph) == {f"blocks.{k}" for k in range(4)}
    one = folded(graph, {"blocks"})
    group = next(n for n in one.nodes if n.op == "group")
    assert group.name == "blocks" and [n.name for n in one.nodes].count("blocks") == 1
    assert group.params == sum(p.numel() for p in model.module.blocks.parameters())
    inside = [n for n in graph.nodes if n.group.startswith("blocks")]
    before = max(n.id for n in graph.nodes if n.op != "output" and not n.group.startswith("blocks")
                 and n.id < inside[0].id)
    after = min(n.id for n in graph.nodes if n.id > inside[-1].id)
    assert (before, group.id) in one.edges and (group.id, after) in one.edges
    assert group.shape == inside[-1].shape
    # Expanded, every block's residual additions are there (two a block).
    assert sum(n.type == "add" for n in folded(graph, ()).nodes if n.group.startswith("blocks")) == 8


class Branchy(nn.Module):
    """Data-dependent control flow (torch.fx refuses it) and a module called twice."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1), nn.Linear(4, 2)
        self.act = nn.ReLU()

    def forward(self, x):
        x = self.act(self.a(x))
        if x.mean() > 0:
            x = self.act(self.b(x)) + x
        return self.c(x.mean((2, 3)))


@pytest.mark.parametrize("net, x", [(Branchy(), torch.rand(1, 1, 8, 8)), (RegisterViT(), torch.rand(1, 1, 24, 32)),
                                    (ScriptedPart(), torch.rand(1, 1, 16))])
def test_models_that_do_not_trace_get_the_graph_of_what_ran(net, x):
    net.eval()
    graph = record_graph(net, x)
    ran = _modules_run(net, x)
    from deepvis.core.probe import hookable_modules

    scripted = {p for p, m in hookable_modules(net) if isinstance(m, torch.jit.ScriptModule)}
    expected = [p for p in ran if not any(p.startswith(s + ".") for s in scripted)]
    assert scripted <= set(expected)  # a TorchScript part is one node
    modules = [n.name.split("#")[0] for n in graph.nodes if n.op == "module"]
    assert modules == expected
    # Every node but the input is reached from the input: nothing is cut off.
    reached, frontier = {0}, [0]
    while frontier:
        node = frontier.pop()
        for s, t in graph.edges:
            if s == node and t not in reached:
                reached.add(t)
                frontier.append(t)
    assert {n.id for n in graph.nodes if n.op in ("module", "output")} <= reached


def test_layout_goes_downward_without_overlaps():
    model = load_model("resnet18", weights="none")
    shown = folded(record_graph(model.module, model.example_input()), ())
    placed = arrange(shown)
    for s, t, points in placed.edges:
        assert placed.nodes[s].y + placed.nodes[s].height <= placed.nodes[t].y
        assert all(b[1] >= a[1] for a, b in zip(points, points[1:]))
    rows = {}
    for node_id, p in placed.nodes.items():
        rows.setdefault(p.y, []).append(p)
    for row in rows.values():
        row.sort(key=lambda p: p.x)
        for a, b in zip(row, row[1:]):
            assert a.x + a.width / 2 < b.x - b.width / 2


def test_graph_command_writes_json_svg_and_png_and_refuses_bad_input(tmp_path):
    done = run_command(["graph", "--model", "digits_cnn", "--out", "g.json"], tmp_path)
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "g.json").read_text())
    assert [n["name"] for n in written["nodes"]][:3] == ["input", "conv1", "relu1"]
    assert {"id", "name", "op", "type", "shape", "params", "group"} <= set(written["nodes"][1])
    assert written["edges"][0] == {"source": 0, "target": 1}
    for out in ("g.svg", "g.png"):
        done = run_command(["graph", "--model", "digits_cnn", "--out", out, "--json"], tmp_path)
        assert done.returncode == 0 and json.loads(done.stdout)["drawn_nodes"] == 12  # dropout, flatten contracted
    assert (tmp_path / "g.svg").read_text().count("<rect") == 1 + 12  # the background and a box a node
    for argv, needle in ((["--out", "g.txt"], "unsupported suffix"), (["--expand", "nothing"], "no module group")):
        bad = run_command(["graph", "--model", "digits_cnn", *argv], tmp_path)
        assert bad.returncode == 2 and bad.stderr.startswith("error: ") and needle in bad.stderr
    assert not (tmp_path / "g.txt").exists()


def test_bench_graph_reports_the_recording_and_a_2000_node_layout():
    from deepvis.bench.graph import bench_graph

    result = bench_graph(load_model("digits_cnn"), rounds=1)
    assert result["model"] == "digits_cnn" and result["nodes"] == 14
    assert result["expanded_nodes"] >= 2000 and result["collapsed_nodes"] < 100  # the 77 blocks folded
    record, bare = result["record_ms"], result["bare_forward_ms"]  # each rounded to 0.1 ms
    assert (record - 0.05) / (bare + 0.05) - 0.01 <= result["ratio"] <= (record + 0.05) / (bare - 0.05) + 0.01


def test_a_nodes_picture_is_its_layers_mean_over_channels(digits):
    import numpy as np
    import torch.nn.functional as F

    from deepvis.graph.live import looks

    probe = Probe(digits.module, digits.example_input())
    frame = (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)
    found = looks(digits, probe, frame, ["conv2", "fc1", "no_such_layer"])
    assert set(found) == {"conv2", "fc1"} and found["fc1"].picture is None
    with torch.inference_mode():
        _, acts = probe.capture(digits.input_tensor(frame), ["conv2", "fc1"])
    plane = acts["conv2"][0].float().mean(0)
    big = F.interpolate(plane[None, None], size=(28, 28), mode="nearest")[0, 0]
    expected = ((big - big.min()) / (big.max() - big.min())).numpy()
    assert np.allclose(found["conv2"].picture, expected, atol=1e-6)
    assert found["conv2"].dead == pytest.approx(float((acts["conv2"][0] <= 0).float().mean()))
    assert found["fc1"].mean == pytest.approx(float(acts["fc1"][0].mean()), abs=1e-6)
