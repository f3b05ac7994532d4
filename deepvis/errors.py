"""The one exception type users see.

Anything the user can fix (a bad path, a mismatched checkpoint, a missing camera) is raised
as a DeepvisError with a one-line message. The CLI prints it as ``error: ...`` and exits 2;
the GUI shows it in a message bar. Everything else is a bug and keeps its traceback.
"""


class DeepvisError(Exception):
    """A problem with the user's input, explained in one line."""

    def __init__(self, message: str):
        # Multi-line messages break the CLI contract (one `error:` line), so fold them here.
        super().__init__(" ".join(str(message).split()))


class Cancelled(Exception):
    """Long work stopped at the user's request (not an error: nothing is reported)."""


def require_finite(value: float, what: str) -> float:
    """``value``, or a DeepvisError when it is NaN or infinite (NaN weights, an overflowing
    input): a picture computed from NaNs is garbage that looks like a result."""
    import math

    if not math.isfinite(value):
        raise DeepvisError(f"{what} is {value} on this input: the model gives NaN or infinite values "
                           f"(check the weights)")
    return value
