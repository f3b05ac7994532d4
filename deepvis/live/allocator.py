"""Keep freed memory in the process for the next frame instead of handing it back to the OS.

glibc returns the free top of a heap to the kernel once it exceeds a trim threshold that it
tunes itself; a live frame that holds several megabytes at once (a transformer's attention:
12 blocks of 3x197x197 floats for a ViT-Tiny) frees them together, the heap is trimmed, and
the next frame faults its pages back in: 600-1,700 page faults a capture, which made capture
cost 25 % over a ViT-Tiny forward instead of 12 %. With fixed thresholds the heaps keep up to
``TRIM_BYTES`` free for reuse.
Memory in use is unchanged (the soak benchmark reads it after ``malloc_trim``).
"""

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_BYTES = 32 * 2 ** 20  # glibc's largest mmap threshold on 64-bit; what its own tuning tops out at
TRIM_BYTES = 64 * 2 ** 20

_done = False


def keep_freed_memory() -> bool:
    """Set glibc's thresholds once per process; False where the C library is not glibc."""
    global _done
    if _done:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS, Windows: their allocators behave otherwise
        return False
    # Setting either threshold switches off glibc's own tuning of both, so both are set.
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
    return _done
