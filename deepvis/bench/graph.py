"""``deepvis bench graph``: recording a model's graph against the bare forward pass it rides on,
and laying out and drawing a graph of at least 2,000 nodes.

The large graph is a vision transformer of timm's own class (patch embedding, CLS token,
position embedding, pre-norm blocks of attention and MLP) made 74 blocks deep and narrow, so
that every block expanded gives over 2,000 nodes, about the size the issue names (a ViT-Base
exported by ``torch.export`` into aten operations); our recording of a ViT-Base itself has 329
(a node per module and per function between modules)."""

from __future__ import annotations

import statistics
import time

import torch

LARGE_DEPTH = 77


def _large_vit():
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    return VisionTransformer(img_size=32, patch_size=8, embed_dim=32, depth=LARGE_DEPTH, num_heads=2,
                             num_classes=10).eval(), torch.rand(1, 3, 32, 32)


def bench_graph(model=None, rounds: int = 3) -> dict:
    from deepvis.core.loading import load_model
    from deepvis.graph import draw
    from deepvis.graph.fold import folded, repeated_blocks
    from deepvis.graph.record import record_graph

    model = model or load_model("resnet18", weights="none")
    x = model.example_input()
    record_graph(model.module, x)  # warm-up
    bare_s, record_s = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        with torch.inference_mode():
            model.module(x)
        bare_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        graph = record_graph(model.module, x)
        record_s.append(time.perf_counter() - start)

    net, y = _large_vit()
    start = time.perf_counter()
    large = record_graph(net, y)
    large_record = time.perf_counter() - start
    expanded = folded(large, (), plumbing=True)
    times = {}
    for name, shown in (("expanded", expanded), ("collapsed", folded(large, repeated_blocks(large)))):
        start = time.perf_counter()
        placed = draw.arrange(shown)
        times[f"layout_{name}_s"] = round(time.perf_counter() - start, 3)
        times[f"{name}_nodes"] = len(shown.nodes)
        if name == "expanded":
            start = time.perf_counter()
            draw.svg(shown, placed)
            times["svg_expanded_s"] = round(time.perf_counter() - start, 3)
            times["rows_expanded"] = placed.rows
    return {"benchmark": "graph", "model": model.name, "nodes": len(graph.nodes), "edges": len(graph.edges),
            "torch_threads": torch.get_num_threads(), "rounds": rounds,
            "bare_forward_ms": round(1000 * statistics.median(bare_s), 1),
            "record_ms": round(1000 * statistics.median(record_s), 1),
            "ratio": round(statistics.median(record_s) / statistics.median(bare_s), 2),
            "large_graph": f"timm VisionTransformer, {LARGE_DEPTH} blocks", "large_record_s": round(large_record, 2),
            **times}
