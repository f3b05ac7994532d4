"""The ``deepvis`` command line.

Every command writes files or prints, exits 0 on success and exits 2 with a single
``error: ...`` line on stderr for bad input, never a traceback (``DEEPVIS_DEBUG=1`` shows
tracebacks of internal errors for bug reports).
"""

import os
import sys
import warnings

from deepvis import __version__
from deepvis.cli.common import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, INTERRUPT, Parser, write_domains
from deepvis.errors import Cancelled, DeepvisError
from deepvis.live.computethread import compute_thread

# One module per command family; each registers its subcommands. The order is --help's order.
FAMILIES = ("app", "model_info", "fetch", "layers", "attribution", "segment", "embed", "optimize", "generative",
            "shapes3d", "autoregressive", "atlas", "doctor", "compare", "match", "graph", "bench")


def build_parser() -> Parser:
    """The whole parser. It imports no torch: ``deepvis --help`` answers at once, and each
    command imports what it needs when it runs."""
    import importlib

    parser = Parser(prog="deepvis", description="Look inside PyTorch networks while they run.")
    parser.add_argument("--version", action="version", version=f"deepvis {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for family in FAMILIES:
        importlib.import_module(f"deepvis.cli.{family}").register(sub)
    write_domains(parser)
    return parser


def main(argv=None) -> int:
    code = _run(argv)
    if argv is None:  # the process's own command line: it exits next
        _end_compute_thread(code)
    return code


def _end_compute_thread(code: int) -> None:
    """Stop the compute thread before the interpreter exits (see ComputeThread.shutdown); a
    task that does not finish in time is abandoned with a hard exit rather than an abort."""
    if not compute_thread().shutdown(timeout=5.0):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # closed by a broken pipe
                pass
        os._exit(code)


# How torch's and OpenCV's allocators say they failed: a RuntimeError / cv2.error, not MemoryError.
_ALLOCATION_FAILURES = ("can't allocate memory", "Insufficient memory", "not enough memory", "Failed to allocate")


def _is_allocation_failure(exc: BaseException) -> bool:
    return any(text in str(exc) for text in _ALLOCATION_FAILURES)


def _run(argv) -> int:
    # A file name that is not UTF-8 must not turn a success line into a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    debug = bool(os.environ.get("DEEPVIS_DEBUG"))
    if not debug:
        # Library deprecation chatter on stderr would break the one-line error contract.
        warnings.filterwarnings("ignore")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["gui"])
    needs_model = ("info", "predict", "activations", "filters", "bench", "saliency", "embed", "dream", "doctor",
                   "compare", "match", "graph", "visualize-unit", "profile-units")
    # bench embed, match and graph have their own default models (digits_cnn, the descriptor, resnet18).
    if getattr(args, "model", "") is None and args.command in needs_model and \
            getattr(args, "name", "") not in ("embed", "match", "graph"):
        from deepvis.core.defaults import DEFAULT_MODEL, DESCRIPTOR_MODEL

        args.model = DESCRIPTOR_MODEL if args.command == "match" else DEFAULT_MODEL
    INTERRUPT.clear()
    try:
        with _truncated_files(args):
            if getattr(args, "on_compute_thread", True):
                _call_interruptibly(args)
            else:
                args.func(args)
        return 0
    except Cancelled as exc:
        # Work that stopped without saying what it kept wrote nothing: outputs are written last.
        print(f"interrupted: {exc or 'stopped before writing anything'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DeepvisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error of ours.
        sys.stderr.close()
        return 0
    except MemoryError:
        print("error: out of memory (try a smaller --input-size or fewer frames)", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            print("error: out of GPU memory (try --device cpu or a smaller --input-size)", file=sys.stderr)
            return EXIT_USAGE
        if _is_allocation_failure(exc):
            print("error: out of memory (try a smaller --input-size, --size or batch)", file=sys.stderr)
            return EXIT_USAGE
        if debug:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"error: internal error {type(exc).__name__}: {first} (run with DEEPVIS_DEBUG=1 for a traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


def _truncated_files(args):
    """With --allow-truncated, readers read files cut short and each is said on stderr (the CLI
    silences Python warnings, so a reader's own warning would not be seen)."""
    import contextlib

    from deepvis.io.truncation import reading_truncated

    if not getattr(args, "allow_truncated", False):
        return contextlib.nullcontext()
    return reading_truncated(lambda sentence: print(f"warning: {sentence}", file=sys.stderr))


def _call_interruptibly(args) -> None:
    """Run the command on the compute thread. The first Ctrl-C sets ``INTERRUPT``: a long
    command's work stops at its next chunk, commits what is complete and raises Cancelled with
    what it kept; a command without chunks finishes, but its output is no longer its result
    (never a success line and "interrupted" together). A second Ctrl-C exits at once."""
    future = compute_thread().submit(args.func, args)
    try:
        future.result()
        return
    except KeyboardInterrupt:
        INTERRUPT.set()
    sys.stdout.flush()
    quiet = open(os.devnull, "w")  # what the command still prints is not its result
    saved, sys.stdout = sys.stdout, quiet
    try:
        future.result()
    except KeyboardInterrupt:
        sys.stdout = saved
        print("interrupted again: stopped at once, without committing", file=sys.stderr)
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    except Cancelled:
        raise
    except Exception:  # noqa: BLE001 (whatever the stopped work raised, it was interrupted)
        raise Cancelled() from None
    finally:
        sys.stdout = saved
        quiet.close()
    raise Cancelled("it finished before it could stop: its files are written, its report is not printed")


if __name__ == "__main__":
    raise SystemExit(main())
