"""Constants for a model's forward arguments beyond its input (``--call-arg NAME=VALUE``): a
voice-activity model's ``forward(x, sr)`` gets ``sr`` on every call, in the CLI and the window.

The forward signature is read (a Python module's, or a TorchScript method's schema) so that a
required argument nobody supplies is named in one error line with the fix, before any dry run
fails on it; the values are bound with ``functools.partial`` on the module's own ``forward``,
so its layers, names and weights stay as they are.
"""

import functools
import inspect

from torch import nn

from deepvis.errors import DeepvisError


def parse_call_args(items) -> dict:
    """``["sr=16000", "mode=fast"]`` -> ``{"sr": 16000, "mode": "fast"}``: ints, then floats,
    else strings."""
    out = {}
    for item in items or []:
        name, sep, text = str(item).partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise DeepvisError(f"bad --call-arg {item!r}: expected NAME=VALUE, e.g. sr=16000")
        value: object = text.strip()
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                continue
        out[name] = value
    return out


def forward_arguments(module: nn.Module) -> tuple[list[str], list[str], bool]:
    """(every argument after the input, the required ones among them, whether it takes **kwargs)."""
    schema = getattr(getattr(module, "forward", None), "schema", None)
    if schema is not None:  # TorchScript: the compiled method's schema, "self" first
        args = [a for a in schema.arguments if a.name != "self"][1:]
        return [a.name for a in args], [a.name for a in args if not a.has_default_value()], False
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return [], [], True
    named = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    rest = named[1:] if named and named[0].kind != inspect.Parameter.KEYWORD_ONLY else named
    extra = any(p.kind == p.VAR_KEYWORD for p in params)
    return ([p.name for p in rest], [p.name for p in rest if p.default is p.empty], extra)


def bind_call_args(module: nn.Module, call_args: dict, name: str) -> None:
    """Check ``call_args`` against the forward signature and bind them to every call."""
    names, required, takes_any = forward_arguments(module)
    missing = [n for n in required if n not in call_args]
    if missing:
        raise DeepvisError(f"{name}'s forward needs {', '.join(missing)} besides the input: give "
                           + " ".join(f"--call-arg {n}=VALUE" for n in missing))
    unknown = [n for n in call_args if n not in names]
    if unknown and not takes_any:
        takes = ", ".join(names) if names else "nothing besides the input"
        raise DeepvisError(f"{name}'s forward has no argument {', '.join(unknown)} (it takes {takes})")
    if call_args:
        module.forward = functools.partial(module.forward, **call_args)


def feed_time_only(module: nn.Module) -> None:
    """Call a model that takes (batch, time) with deepvis's (batch, 1, time) signal windows: the
    channel axis is dropped on the way in, so every view keeps one layout and gradients still
    reach the window. Bound on ``forward`` as call arguments are, so layers keep their names."""
    forward = module.forward

    def forward_time_only(x, *args, **kwargs):
        return forward(x[:, 0] if x.ndim == 3 else x, *args, **kwargs)

    module.forward = forward_time_only
