"""Qt set-up that must happen before any view module imports pyqtgraph or vispy."""

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

try:
    # Mesa's software GL (llvmpipe, what Xvfb and VMs give vispy) and triton, which torch
    # imports lazily (torchvision's ops pull it in through torch._dynamo), each load an LLVM.
    # triton's, loaded after a GL context exists, segfaulted the app on opening a torchvision
    # model in a window with a 3-D view; loaded first, both live (80 ms).
    import triton  # noqa: F401
except Exception:  # not installed (CPU-only torch builds), or broken: nothing to order
    pass

import PySide6  # noqa: E402,F401  (pyqtgraph and vispy pick the binding that is already imported)
import pyqtgraph as pg  # noqa: E402

# Row-major float32 images with explicit levels are pyqtgraph's fast path.
pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="#1e1f22", foreground="#d0d0d0")
