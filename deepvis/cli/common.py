"""What every command shares: the parser contract, argument types, model options, small writers."""

import argparse
import json
import threading
import os
import sys

from deepvis.core.defaults import DEFAULT_MODEL, DEVICE_CHOICES, TASKS
from deepvis.errors import DeepvisError
from deepvis.live.computethread import compute_thread

EXIT_USAGE = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130

# Set by the first Ctrl-C: long commands pass it as their work's ``cancel``, so the work stops
# at its next chunk, commits what is complete and says so (cli/__init__.py: one cancel path).
INTERRUPT = threading.Event()


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        # No abbreviations: --input on a command without it was taken as --input-size, silently;
        # a wrong option is an error, not another option.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        # argparse prints usage plus an error; the contract is one `error:` line.
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _number(convert, accept, expected: str, domain: str):
    """An argparse type: ``convert`` the text, then refuse what ``accept`` rejects (NaN included).
    ``domain`` is what the option's help says of its values (build_parser writes it there)."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value
    parse.domain = domain
    return parse


def whole(low: int, high: int | None = None, high_text: str | None = None):
    """A type for whole numbers from ``low`` (to ``high``)."""
    if high is None:
        return _number(int, lambda v: v >= low, f"a whole number of at least {low}", f"whole, >= {low}")
    text = high_text or f"{high:,}"
    return _number(int, lambda v: low <= v <= high, f"a whole number from {low} to {text}",
                   f"whole, {low} to {text}")


def real(low: float, high: float | None = None, above: bool = False):
    """A type for finite numbers from ``low`` (or above it, with ``above``) to ``high``."""
    def accept(v):
        return (v > low if above else v >= low) and (v <= high if high is not None else v < float("inf"))
    bound = f"> {low:g}" if above else f">= {low:g}"
    if high is None:
        return _number(float, accept, f"a number {'above' if above else 'of at least'} {low:g}", bound)
    start = f"above {low:g}" if above else f"from {low:g}"
    return _number(float, accept, f"a number {start} to {high:g}", f"{bound}, <= {high:g}" if above
                   else f"{low:g} to {high:g}")


MAX_SEED = 2**63 - 1
positive_int = whole(1)
fraction = real(0, 1)
seed_number = whole(0, MAX_SEED, "2^63-1")
positive_float = real(0, above=True)


def write_domains(parser: argparse.ArgumentParser) -> None:
    """The one rule for option values, said in every option's help: each numeric option's type
    knows its domain (a value outside it is exit 2) and the help ends with it in brackets. A
    value in the domain that is too large for the data at hand is lowered with a ``note:``
    (see clamped)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                write_domains(child)
            continue
        domain = getattr(action.type, "domain", None)
        if domain and action.help and action.help is not argparse.SUPPRESS and f"[{domain}]" not in action.help:
            action.help = f"{action.help} [{domain}]"


def clamped(option: str, asked: int, limit: int, what: str) -> int:
    """A valid value too large for this data, lowered to ``limit`` with one ``note:`` line saying
    what ``limit`` is the number of; returns the value used (commands put it in their JSON)."""
    if asked <= limit:
        return asked
    print(f"note: {option} {asked} lowered to {limit}, {what}", file=sys.stderr)
    return limit


def add_device(p):
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                   help="where to run: auto picks CUDA or MPS when present (default: %(default)s)")


MAX_SCALED_SIDE = 16384  # px: --scale's picture, a PNG viewers still open


def add_scale(p, what: str = "--out"):
    p.add_argument("--scale", type=positive_int, default=1, metavar="K",
                   help=f"{what} enlarged K times by nearest neighbour, each pixel a KxK block (default: %(default)s)")


def enlarged(picture, k: int):
    """A data picture enlarged by whole pixels, never resampled; refused past MAX_SCALED_SIDE
    (call before any output is written)."""
    side = max(picture.shape[:2]) * k
    if side > MAX_SCALED_SIDE:
        raise DeepvisError(f"--scale {k} would make a picture of {side} px a side; at most {MAX_SCALED_SIDE}")
    return picture.repeat(k, axis=0).repeat(k, axis=1) if k > 1 else picture


def add_plain(p):
    p.add_argument("--plain", action="store_true",
                   help="write the picture alone: no title, channel numbers, axes or colour bar")


def add_model(p, default: str = DEFAULT_MODEL):
    # None here: main() fills in the default for headless commands; the GUI restores the last one.
    p.add_argument("--model", default=None, metavar="SPEC",
                   help=f"zoo name (deepvis models), TorchScript/checkpoint file, or package.module:callable "
                        f"(default {default})")
    p.add_argument("--weights", metavar="FILE|none",
                   help="state dict or checkpoint to load; 'none' for random initialisation")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow checkpoints that unpickle Python objects (can run code: trusted files only)")
    p.add_argument("--input-size", metavar="HxW", help="input size for models that do not record it")
    p.add_argument("--channels", type=int, choices=(1, 3), help="input channels (default: from the first conv)")
    p.add_argument("--mean", metavar="M[,M,M]", help="normalization mean in pixel units, each value in [0, 1]")
    p.add_argument("--std", metavar="S[,S,S]",
                   help="normalization std in pixel units, each value above 0 (1/255 for a model trained on 0..255)")
    p.add_argument("--fit", choices=("crop", "stretch"), help="fit frames by centre crop (default) or stretch")
    p.add_argument("--labels", metavar="FILE", help="class names: text (one per line) or JSON")
    p.add_argument("--task", choices=TASKS,
                   help="what the output is, when its shape does not tell (image: an autoencoder, denoiser or "
                        "image-to-image net; descriptor: a feature per cell, for match)")
    p.add_argument("--output-range", choices=("tanh", "sigmoid", "input"),
                   help="an image model's output pixels: tanh [-1,1], sigmoid [0,1] or the input's normalization "
                        "(default: from its last layer)")
    p.add_argument("--sample-rate", type=positive_int, metavar="HZ",
                   help="a 1-D model's sample rate: signal files are resampled to it (default: as recorded)")
    p.add_argument("--input-kind", choices=("image", "signal"),
                   help="what the model takes, when its layers do not tell (a 1-D model without a Conv1d); one "
                        "number for --input-size with --sample-rate also says signal")
    p.add_argument("--signal-layout", choices=("bct", "bt"),
                   help="a 1-D model's windows: (batch, channels, time) or (batch, time) (default: found by a dry run)")
    p.add_argument("--head", metavar="OUTPUT",
                   help="the output that is the prediction, in a model with several (deepvis info lists them): "
                        "output[2], output[out], output[0][scores]")
    p.add_argument("--min-score", type=fraction, metavar="S",
                   help="a detector's detections scoring S or more (default: the model's own threshold)")
    p.add_argument("--init-seed", type=seed_number, default=0, metavar="N",
                   help="seed of random initialisation (--weights none, a factory without weights), so two runs "
                        "agree (default: %(default)s)")
    p.add_argument("--call-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="a constant for a forward argument beyond the input, given on every call (repeatable; "
                        "int, float or string), e.g. --call-arg sr=16000")
    add_device(p)


def add_allow_truncated(p):
    """For the commands that read pictures or recordings the user names (an atlas lists the files
    it cannot read instead: its workers read them in other processes)."""
    p.add_argument("--allow-truncated", action="store_true",
                   help="read pictures and WAV files that are cut short (the part present), with a warning: line "
                        "for each, instead of refusing them")


def model_options(args) -> dict:
    """load_model's keyword arguments from the shared model options."""
    from deepvis.core.callargs import parse_call_args
    from deepvis.core.inputspec import parse_floats, parse_size

    input_kind = getattr(args, "input_kind", None)
    if input_kind is None and args.input_size and args.input_size.strip().isdigit() and \
            getattr(args, "sample_rate", None):
        input_kind = "signal"  # one number and a sample rate: windows of N samples
    return dict(device=args.device, trust_pickle=args.trust_pickle, input_kind=input_kind,
                signal_layout=getattr(args, "signal_layout", None), head=getattr(args, "head", None),
                min_score=getattr(args, "min_score", None),
                input_size=parse_size(args.input_size) if args.input_size else None, channels=args.channels,
                mean=pixel_means(args.mean) if args.mean else None,
                std=parse_floats(args.std, "std") if args.std else None, labels=args.labels, fit=args.fit,
                task=getattr(args, "task", None), output_range=getattr(args, "output_range", None),
                sample_rate=getattr(args, "sample_rate", None),
                call_args=parse_call_args(getattr(args, "call_arg", None)) or None,
                init_seed=getattr(args, "init_seed", 0))


def note_random_weights(model) -> None:
    """One line on stderr (stdout stays the result, JSON included) for every command whose
    output reads a model's classes: random weights make them chance, whatever they are called."""
    if model.random_weights:
        print(f"note: {model.name} has random weights: its predictions are chance, whatever the class names say",
              file=sys.stderr)


def pixel_means(text: str) -> tuple[float, ...]:
    """``--mean``: values in [0, 1] pixel units, as documented; -5 was taken and moved every
    prediction."""
    from deepvis.core.inputspec import parse_floats

    values = parse_floats(text, "mean")
    if not all(0 <= v <= 1 for v in values):
        raise DeepvisError(f"--mean {text}: each value must be in [0, 1], in pixel units (ImageNet's are 0.485, "
                           f"0.456, 0.406; a 0..255 mean divided by 255)")
    return values


def load_model_of(args, source: tuple | None = None):
    """The command's model on the compute thread: ``--model`` and ``--weights``, or ``source``
    (spec, weights) with the same options (compare's second checkpoint)."""
    from deepvis.core.download import progress_to
    from deepvis.core.loading import load_model

    spec, weights = source if source is not None else (args.model, args.weights)

    def load():
        # A download of zoo weights says how far it is (a bar on a terminal, nothing in a pipe).
        with progress_to(download_bar if sys.stderr.isatty() else None):
            return load_model(spec, weights, **model_options(args))

    try:
        return compute_thread().call(load)
    finally:
        if sys.stderr.isatty():
            clear_progress_line()


def clear_progress_line(width: int = 72) -> None:
    """Blank the terminal line a ``\r`` progress report wrote, so the result or error starts clean."""
    print("\r" + " " * width + "\r", end="", file=sys.stderr, flush=True)


def stage_progress(stage: str, done: int, total: int) -> None:
    """A long command's "stage done/total" on one terminal line; nothing in a pipe."""
    if sys.stderr.isatty():
        print(f"\r{stage} {done}/{total}".ljust(40), end="", file=sys.stderr, flush=True)


def end_progress() -> None:
    """Blank what stage_progress wrote, before the result is printed."""
    if sys.stderr.isatty():
        clear_progress_line()


def download_bar(name: str, done: int, total: int) -> None:
    """A download's progress on the terminal: ``resnet18-f37072fd.pth  12.5 / 44.7 MB  28 %``."""
    share = f"{done / total:4.0%}" if total else ""
    size = f"{done / 1e6:.1f} / {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
    print(f"\rdownloading {name}  {size}  {share}", end="", file=sys.stderr, flush=True)


def probe_of(model):
    from deepvis.core.probe import Probe

    return Probe(model.module, model.example_input())


def model_input(model, path):
    """The model's input tensor for a file, and what it shows: a picture fitted to the model
    (uint8 H, W, 3) or, for a 1-D model, the signal window it sees (float32 channels, samples)."""
    import numpy as np

    if model.signal is not None:
        from deepvis.io.signals import read_signal

        x = model.signal_tensor(read_signal(path))
        return x, x[0].cpu().numpy()
    image = read_input(path)
    fitted = model.preprocessor.fit(image)
    return model.input_tensor(image), np.repeat(fitted, 3, axis=2) if fitted.shape[2] == 1 else fitted


def print_json(obj, indent: int | None = 2):
    """``obj`` as strict JSON: NaN and infinities (a metric with nothing to measure) become null,
    which every JSON parser reads; ``json.dumps`` would write the bare NaN that strict ones refuse."""
    print(json.dumps(strict_json(obj), indent=indent, allow_nan=False))


def strict_json(obj):
    """``obj`` with every non-finite float replaced by None, numpy scalars as Python numbers."""
    import math

    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()  # a numpy scalar
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def read_input(path):
    from deepvis.io.images import read_image

    return read_image(path)


def save_npy(path, array):
    import numpy as np

    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        np.save(path, array)
    except OSError as exc:
        raise DeepvisError(f"cannot write {path}: {exc.strerror or exc}") from None


def maybe_number(value, digits=3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
