"""Reading weight files safely and fitting them to a model.

A checkpoint is unpickled with ``weights_only=True`` unless the user opted in with
``--trust-pickle``: a pickle can run arbitrary code at load time, so the safe loader must
refuse before anything in the file executes. Wrappers seen in the wild are unwrapped
(Lightning's ``{"state_dict": ...}``, ``model_state_dict``, DCGAN's ``netG_state_dict``), and
key prefixes added by wrappers (``module.`` from DataParallel, ``model.``/``net.`` from
Lightning modules) are stripped when that makes the keys match.
"""

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from deepvis.errors import DeepvisError

# Keys under which training scripts commonly nest the weights, most specific first.
STATE_DICT_KEYS = ("state_dict", "state_dict_ema", "model_ema", "model_state_dict", "model_state", "netG_state_dict", "model", "net",
                   "network", "weights", "params")
PREFIXES = ("module.", "model.", "net.", "network.", "_orig_mod.", "backbone.")
_LIST_LIMIT = 6


def load_torchscript(path, map_location="cpu"):
    """``torch.jit.load`` without its FutureWarning ("`torch.jit.load` is deprecated. Please
    switch to `torch.export`", on every call since torch 2.14): a user's TorchScript file is
    what they have, and the warning would be printed at each model the app opens."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning)
        return torch.jit.load(str(path), map_location=map_location)


def is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a ``code/`` folder; plain ``torch.save`` files have none."""
    try:
        with zipfile.ZipFile(path) as archive:
            # Entries are "<archive root>/code/...": look at the second part only, so that a
            # torch.save file that happens to be called code.pt is not taken for TorchScript.
            return any(name.split("/")[1:2] == ["code"] for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def check_file(path, what: str = "checkpoint") -> Path:
    path = Path(path)
    if not path.exists():
        raise DeepvisError(f"{what} {path} does not exist")
    if path.is_dir():
        raise DeepvisError(f"{what} {path} is a folder, not a file")
    if path.stat().st_size == 0:
        raise DeepvisError(f"{what} {path} is empty")
    if is_onnx(path) and what != "model file":
        raise DeepvisError(f"{what} {path} is an ONNX model: give it as --model (ONNX files hold their own graph "
                           f"and weights)")
    return path


# The fields an ONNX ModelProto (protobuf) has after its ir_version: producer name and version,
# domain, model version, doc string, graph, opset imports.
_ONNX_NEXT_TAGS = {0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42}


def is_onnx(path: Path) -> bool:
    """By content, whatever the name: a protobuf starting with ONNX's ir_version field (tag 1,
    a varint 1..100) followed by one of ModelProto's next fields. torch.save files start with
    "PK" (zip) or a pickle's 0x80; neither starts with 0x08."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    if len(head) < 3 or head[0] != 0x08:
        return False
    version, i = 0, 1
    while i < len(head) and head[i] & 0x80:  # a multi-byte varint
        version |= (head[i] & 0x7F) << (7 * (i - 1))
        i += 1
    if i >= len(head) - 1:
        return False
    version |= head[i] << (7 * (i - 1))
    return 1 <= version <= 100 and head[i + 1] in _ONNX_NEXT_TAGS


def is_safetensors(path: Path) -> bool:
    """By content, not name: 8 bytes of little-endian header length, then the JSON header."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A .safetensors file's tensors on the CPU; the format holds no code, so no opt-in is asked."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        text = first_line(exc)
        if any(s in text.lower() for s in ("incomplete", "too small", "out of bounds", "eof", "invalid offset")):
            raise DeepvisError(f"{path} is truncated or corrupt (safetensors: {text})") from None
        raise DeepvisError(f"{path} is not a readable safetensors file ({text})") from None


def load_checkpoint(path, trust_pickle: bool = False):
    """``torch.load`` on the CPU with one-line errors for every way a file can be bad;
    safetensors files are read as what they are, whatever their name."""
    path = check_file(path)
    if path.suffix.lower() == ".safetensors" or is_safetensors(path):
        return load_safetensors(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text or "weights_only" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text) or re.search(r"global[: ]+'?([\w.]+)", text)
            # The safe loader also wraps plain garbage ("Unsupported operand 95"): only a refused
            # global/constructor means Python objects; anything else is not a checkpoint at all.
            if found or any(s in text for s in ("call reduce", "create new object", "Can only build")):
                what = f" (it references {found.group(1)})" if found else ""
                raise DeepvisError(
                    f"{path} contains pickled Python objects{what}; unpickling can run arbitrary code, so it "
                    f"is refused: pass --trust-pickle only if you trust where the file came from") from None
            detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
            raise DeepvisError(f"{path} is not a PyTorch checkpoint "
                               f"({detail.group(1)[:200] if detail else 'unreadable pickle data'})") from None
        raise DeepvisError(f"{path} is not a PyTorch checkpoint ({first_line(exc)})") from None
    except RuntimeError as exc:
        text = str(exc)
        if "zip archive" in text or "central directory" in text or "PytorchStreamReader" in text:
            raise DeepvisError(f"{path} is truncated or corrupt (cannot read its zip archive)") from None
        raise DeepvisError(f"cannot load {path}: {first_line(exc)}") from None
    except (EOFError, ValueError, TypeError, OSError, AttributeError, ImportError, ModuleNotFoundError,
            IndexError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        if isinstance(exc, EOFError):
            raise DeepvisError(f"{path} is truncated (ran out of data while reading)") from None
        if isinstance(exc, (OSError, ValueError)) and zipfile.is_zipfile(path):
            raise DeepvisError(f"{path} is truncated or corrupt (its zip archive cannot be read)") from None
        if isinstance(exc, (ImportError, AttributeError)) and trust_pickle:
            raise DeepvisError(f"{path} needs code that is not importable here: {first_line(exc)}") from None
        raise DeepvisError(f"{path} is not a PyTorch checkpoint ({first_line(exc)})") from None


def extract_state_dict(obj, path="checkpoint") -> dict[str, torch.Tensor]:
    """The tensor mapping inside a loaded checkpoint object."""
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if not isinstance(obj, Mapping):
        raise DeepvisError(f"{path} holds a {type(obj).__name__}, not weights (a state dict)")
    if obj and _is_tensor_mapping(obj):
        return dict(obj)
    for key in STATE_DICT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, nn.Module):
            return inner.state_dict()
        if isinstance(inner, Mapping) and inner and _is_tensor_mapping(inner):
            return dict(inner)
    # Optimizer state and scalars sit beside weights in training checkpoints; keep the tensors.
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if tensors:
        return tensors
    keys = ", ".join(map(str, list(obj)[:_LIST_LIMIT]))
    raise DeepvisError(f"{path} holds no weights: its top-level keys are {keys}")


def _is_tensor_mapping(obj: Mapping) -> bool:
    values = list(obj.values())
    tensors = sum(isinstance(v, torch.Tensor) for v in values)
    # Buffers like num_batches_tracked are tensors too; a few non-tensor extras are tolerated.
    return tensors > 0 and tensors >= 0.9 * len(values)


def align_keys(state: Mapping[str, torch.Tensor], model_keys) -> dict[str, torch.Tensor]:
    """Strip (or add) the wrapper prefix that makes the most checkpoint keys match the model."""
    model_keys = set(model_keys)
    best, best_hits = dict(state), len(model_keys & set(state))
    candidates = [("", "")]
    for p in PREFIXES:
        candidates += [(p, ""), ("", p)]
        candidates += [(p + q, "") for q in PREFIXES if q != p]
    for strip, add in candidates:
        if strip and not any(k.startswith(strip) for k in state):
            continue
        renamed = {add + (k[len(strip):] if strip and k.startswith(strip) else k): v for k, v in state.items()}
        hits = len(model_keys & set(renamed))
        if hits > best_hits:
            best, best_hits = renamed, hits
    return best


def load_weights_into(model: nn.Module, state: Mapping[str, torch.Tensor], source="checkpoint") -> None:
    """Load strictly, after aligning prefixes; a mismatch names the missing, unexpected and misshapen keys."""
    own = model.state_dict()
    state = align_keys(state, own.keys())
    problems = weight_mismatch(own, state)
    if problems:
        raise DeepvisError(f"{source} does not fit the model: {problems}")
    model.load_state_dict(state, strict=True)


def weight_mismatch(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> str:
    """A one-line description of how ``state`` differs from ``own``, or '' when it fits."""
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    misshapen = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                 if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]
    # load_state_dict casts silently: integer (or bool) values for float weights are a broken
    # export (or the wrong file), not weights; counters like BatchNorm's num_batches_tracked
    # are integers on both sides and pass.
    mistyped = [f"{k} {state[k].dtype} vs {own[k].dtype}" for k in own
                if k in state and torch.is_tensor(state[k]) and torch.is_tensor(own[k])
                and own[k].is_floating_point() and not (state[k].is_floating_point() or state[k].is_complex())]
    parts = []
    if missing:
        parts.append(f"missing keys {_short_list(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {_short_list(unexpected)}")
    if misshapen:
        parts.append(f"shape mismatch {_short_list(misshapen)}")
    if mistyped:
        parts.append(f"integer values for float weights {_short_list(mistyped)}")
    return "; ".join(parts)


def _short_list(items) -> str:
    shown = ", ".join(items[:_LIST_LIMIT])
    more = f" and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else ""
    return f"[{shown}{more}]"


def first_line(exc: BaseException) -> str:
    """An exception's first line, for a one-line error (its type when it says nothing)."""
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
