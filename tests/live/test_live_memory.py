"""Live frames leave nothing behind: the objects alive between frames are the same after more
frames, for off and every saliency method.

The leak this guards against: guided backprop and deconvolution kept every frame's objective
alive through a reference cycle that runs through autograd's C++ graph (~20 MB a frame on
EfficientNet-Lite0, 3 GB a minute live). An eight-minute soak of the window's resident memory
caught it, but memory floors scatter by +-13 MB/min on a busy machine, so the soak is a bench
(``deepvis bench soak``) a person runs before a release. This counts instead: every tensor
Python can reach, the autograd nodes they hold, their storage, and numpy's arrays, on the
compute thread between two frames, where nothing is in flight. With the old leak put back,
two deconvolution frames leave 392 more tensors, 1,289 autograd nodes and 101 MB; without it
the counts do not move at all.
"""

import gc
import time

import numpy as np
import torch

from deepvis.io.sources import PatternSource
from deepvis.live.computethread import compute_thread
from deepvis.live.pipeline import LiveSettings, SaliencySettings

METHODS = (None, "gradient", "deconv", "guided", "integrated-gradients", "smoothgrad", "gradcam")
WARM_FRAMES = 1  # what a method allocates once (Captum's modules, hooks, caches) is in after one frame
MEASURED_FRAMES = 2


def census() -> dict:
    """What is alive now: tensors Python can reach, the autograd nodes they hold, their
    storage in KB, and the numpy arrays that Python objects refer to (with their KB)."""
    gc.collect()
    objects = gc.get_objects()
    # type() rather than isinstance: some torch module attributes warn when their class is read.
    tensors = [o for o in objects if issubclass(type(o), torch.Tensor)]
    nodes: dict[int, object] = {}
    stack = [t.grad_fn for t in tensors if t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if id(node) not in nodes:
            nodes[id(node)] = node  # kept, so that no id is reused during the walk
            stack.extend(f for f, _ in node.next_functions if f is not None)
    arrays = {id(r): r for o in objects for r in gc.get_referents(o) if type(r) is np.ndarray}
    return {
        "tensors": len(tensors),
        "autograd_nodes": len(nodes),
        "tensor_kb": sum(t.untyped_storage().nbytes() for t in tensors if t.layout == torch.strided) // 1024,
        "arrays": len(arrays),
        "array_kb": sum(a.nbytes for a in arrays.values() if a.base is None) // 1024,
    }


def test_live_frames_keep_no_tensor_graph_or_array_for_every_method(lite0, run):
    # The live path as the window drives it (one pipeline, the method switched in place) on the
    # default model, the one the leak was found on. The heavy methods run 4 passes a map
    # instead of the window's 16-32: each pass goes through the same objective and hooks.
    maps = {}  # method -> how many of its maps arrived (the maps themselves would be counted)
    last = [None]

    def on_result(result):
        sal = result.saliency
        if sal is not None and id(sal) != last[0]:  # a heavy map is re-sent with the frames after it
            last[0] = id(sal)
            maps[sal.settings.method] = maps.get(sal.settings.method, 0) + 1

    pipeline = run(lite0, PatternSource(160, 120), LiveSettings(), on_result=on_result)
    compute = compute_thread()

    def frames(method, count):
        # Results for the pipeline off; new maps of this method otherwise (a heavy map spans frames).
        def done():
            return pipeline.published if method is None else maps.get(method, 0)
        target = done() + count
        deadline = time.monotonic() + 120
        while done() < target:
            assert time.monotonic() < deadline, f"{method}: {done()} of {target} frames in 120 s"
            time.sleep(0.01)

    grew = {}
    for method in METHODS:
        pipeline.update(saliency=SaliencySettings(method, samples=4, steps=4) if method else None)
        frames(method, WARM_FRAMES)
        before = compute.call(census)
        frames(method, MEASURED_FRAMES)
        after = compute.call(census)
        assert after["autograd_nodes"] == 0, (method, after)
        grew[method or "off"] = {key: after[key] - before[key] for key in before}
    print(grew)
    for method, growth in grew.items():
        assert growth["tensors"] <= 0 and growth["tensor_kb"] <= 0, (method, growth)
        assert growth["arrays"] <= 0 and growth["array_kb"] <= 0, (method, growth)
