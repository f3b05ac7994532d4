"""The compute thread keeps freed memory for the next frame: capturing a ViT's attention (twelve
3x197x197 probability matrices held at once) faulted ~1,660 pages back in every frame after
glibc trimmed the heap, a quarter of the forward's time; with the thresholds fixed it faults
none once warm. And the attention capture's cost over the bare forward is in the live bench."""

import resource
import sys

import pytest
import torch

from deepvis.live.allocator import keep_freed_memory
from deepvis.live.computethread import compute_thread

timm = pytest.importorskip("timm")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt


def test_attention_captures_fault_no_pages_back_once_warm():
    from deepvis.attribution.attention import capture_attention

    assert keep_freed_memory()
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    x = torch.randn(1, 3, 224, 224)

    def captures():
        faults = []
        # As in the live window: the frame's own forward, then the Attention tab's capture.
        for _ in range(8):
            with torch.inference_mode():
                model(x)
            before = _faults()
            _, attention = capture_attention(model, x)
            faults.append(_faults() - before)
            assert len(attention.probabilities) == 12
            del attention
        return sum(faults[3:]) / 5  # after three frames to warm the heaps up

    per_capture = compute_thread().call(captures)
    # 5.6 MB of probabilities is ~1,400 pages; a trimmed heap faults them all in again.
    assert per_capture < 100, per_capture


def test_bench_live_on_a_vit_reports_the_attention_capture():
    from deepvis.bench.engine import bench_live
    from deepvis.core.loading import load_model

    model = load_model("digits_vit", device="cpu")
    result = bench_live(model, frames=20, block=5)
    figures = result["attention_capture"]
    assert figures["blocks"] == 4 and figures["frames"] >= 10
    assert figures["capture_ms"] > 0 and figures["bare_ms"] > 0
    assert figures["overhead"] == pytest.approx(figures["capture_ms"] / figures["bare_ms"] - 1, abs=0.02)
    assert "attention_capture" not in bench_live(load_model("digits_cnn", device="cpu"), frames=10, block=5)
