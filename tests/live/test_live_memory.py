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

The frames run in a fresh interpreter (this file run as a script): a census walks every object
Python tracks, which in a whole test session's process are millions (about a second a count
there, 0.3 s here), and the counts then do not depend on what other tests left behind.
"""

import gc
import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow  # a fresh interpreter for its census

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


def growth_per_method() -> dict:
    """{method: {figure: after - before}} and the last census, over MEASURED_FRAMES frames of
    each method after WARM_FRAMES. The live path as the window drives it (one pipeline, the
    method switched in place) on the default model, the one the leak was found on. The heavy
    methods run 4 passes a map instead of the window's 16-32: each pass goes through the same
    objective and hooks."""
    from deepvis.core.loading import load_model
    from deepvis.io.sources import PatternSource
    from deepvis.live.computethread import compute_thread
    from deepvis.live.pipeline import LivePipeline, LiveSettings, SaliencySettings

    compute = compute_thread()
    model = compute.call(load_model, "efficientnet_lite0", device="cpu")
    maps = {}  # method -> how many of its maps arrived (the maps themselves would be counted)
    last = [None]

    def on_result(result):
        sal = result.saliency
        if sal is not None and id(sal) != last[0]:  # a heavy map is re-sent with the frames after it
            last[0] = id(sal)
            maps[sal.settings.method] = maps.get(sal.settings.method, 0) + 1

    pipeline = LivePipeline(model, PatternSource(160, 120), LiveSettings(), on_result=on_result).start()

    def frames(method, count):
        # Results for the pipeline off; new maps of this method otherwise (a heavy map spans frames).
        def done():
            return pipeline.published if method is None else maps.get(method, 0)
        target = done() + count
        deadline = time.monotonic() + 120
        while done() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method}: {done()} of {target} frames in 120 s")
            time.sleep(0.01)

    grew, after = {}, None
    try:
        for method in METHODS:
            pipeline.update(saliency=SaliencySettings(method, samples=4, steps=4) if method else None)
            frames(method, WARM_FRAMES)
            before = compute.call(census)
            frames(method, MEASURED_FRAMES)
            after = compute.call(census)
            grew[method or "off"] = {key: after[key] - before[key] for key in before}
            if after["autograd_nodes"]:
                break  # a graph outlived its frame: no need to go on
    finally:
        pipeline.stop()
    return {"growth": grew, "last": after}


def test_live_frames_keep_no_tensor_graph_or_array_for_every_method():
    proc = subprocess.run([sys.executable, __file__], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(result)
    assert result["last"]["autograd_nodes"] == 0, result
    assert set(result["growth"]) == {method or "off" for method in METHODS}
    for method, growth in result["growth"].items():
        assert growth["tensors"] <= 0 and growth["tensor_kb"] <= 0, (method, growth)
        assert growth["arrays"] <= 0 and growth["array_kb"] <= 0, (method, growth)


if __name__ == "__main__":
    print(json.dumps(growth_per_method()))
    from deepvis.live.computethread import compute_thread

    compute_thread().shutdown()  # not inside torch when the interpreter ends
