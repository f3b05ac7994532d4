"""Files cut short: refused by default, or read (the part present) when the user asks.

A truncated picture decodes to a picture with its missing part filled in, and a truncated
WAV to a shorter recording: both give an answer that looks right and is about a different
input (a sine cut to 500 samples is classified as noise bursts). So every reader refuses
them, unless the user opted in (``--allow-truncated``); then the reader reads what is there
and says so through the reporter the opt-in gave, because the command line silences Python
warnings and a suppressed warning is how the wrong answer came about in the first place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

HINT = "--allow-truncated reads the part present"

_reporter: Callable[[str], None] | None = None


@contextmanager
def reading_truncated(report: Callable[[str], None]) -> Iterator[None]:
    """Within the block, readers read truncated files and pass one sentence per file to ``report``."""
    global _reporter
    saved, _reporter = _reporter, report
    try:
        yield
    finally:
        _reporter = saved


def allowed(path, what: str) -> bool:
    """Whether the truncated file ``path`` may be read; if so, ``what`` (how it falls short)
    is reported now. Readers refuse the file when this is False."""
    if _reporter is None:
        return False
    _reporter(f"{path} is truncated ({what}): read the part present")
    return True
