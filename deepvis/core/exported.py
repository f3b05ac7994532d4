"""``torch.export`` archives (``.pt2``, ``torch.export.save``), PyTorch's successor to
TorchScript, opened as a module every view and command can use.

``torch.export.load`` gives an ``ExportedProgram``; ``torch.export.unflatten`` turns it back
into the module tree it was exported from (``InterpreterModule`` per submodule, each running
its part of the graph), so forward hooks attach to each layer by its original path, as on the
eager model, and gradients flow for saliency. The input size is the program's own (its first
input's shape as exported); a program exported with a dynamic size runs at the size asked.

Loading unpickles: ``torch.export.load`` reads weights, constants and sample inputs with
``torch.load(weights_only=False)`` (and ``pickle.loads`` for some constants). So every pickle
in the archive is first read with torch's restricted unpickler (``weights_only=True``: tensors,
containers, numbers); an archive holding anything else needs ``--trust-pickle``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from deepvis.core.checkpoint import first_line
from deepvis.errors import DeepvisError

_PAYLOAD_DIRS = ("data/weights/", "data/constants/", "data/sample_inputs/")
_OBJECT_PREFIXES = ("custom_obj_", "opaque_obj_")  # constants torch unpickles as Python objects


def is_exported_archive(path) -> bool:
    """A ``torch.export.save`` archive: a zip with ``<name>/archive_format`` reading ``pt2``."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith("/archive_format") and name.count("/") == 1:
                    return archive.read(name).strip() == b"pt2"
    except (zipfile.BadZipFile, OSError, KeyError):
        return False
    return False


def _check_pickles(path: Path) -> None:
    """Refuse (without ``--trust-pickle``) an archive whose pickles hold more than tensors.

    What torch.export.load unpickles is what its payload configs do not mark as raw tensor
    bytes (``use_pickle: false``): pickled weights and tensor constants, legacy weight and
    constant files, sample inputs; and custom or opaque object constants, which are Python
    objects by definition."""
    import json

    import torch

    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        raw = set()
        for name in names:
            if name.endswith("_config.json") and any(f"/{d}" in f"/{name}" for d in _PAYLOAD_DIRS[:2]):
                try:
                    config = json.loads(archive.read(name)).get("config", {})
                except ValueError:
                    raise DeepvisError(f"{path} is a broken torch.export archive: {name} is not JSON") from None
                folder = name.rsplit("/", 1)[0]
                raw.update(f"{folder}/{entry.get('path_name')}" for entry in config.values()
                           if isinstance(entry, dict) and entry.get("use_pickle") is False)
        for name in names:
            top, _, rest = name.partition("/")
            if not any(rest.startswith(d) for d in _PAYLOAD_DIRS) or name.endswith(("/", ".json")) or name in raw:
                continue
            if rest.rsplit("/", 1)[-1].startswith(_OBJECT_PREFIXES):
                raise DeepvisError(f"{path} holds a Python object constant ({rest}); loading it runs its code: "
                                   f"pass --trust-pickle for a file you trust")
            try:
                torch.load(io.BytesIO(archive.read(name)), weights_only=True, map_location="cpu")
            except Exception as exc:  # noqa: BLE001 (the restricted unpickler refuses with several types)
                raise DeepvisError(f"{path} holds Python objects beyond tensors in {rest} ({first_line(exc)}); "
                                   f"loading it runs their code: pass --trust-pickle for a file you trust") from None


def load_exported(path, trust_pickle: bool = False):
    """The archive at ``path`` as an ``nn.Module`` (its module tree unflattened); its first
    input's exported shape is on the module as ``deepvis_input_shape`` (None when dynamic)."""
    import torch

    path = Path(path)
    try:
        if not trust_pickle:
            _check_pickles(path)
        program = torch.export.load(str(path))
        module = torch.export.unflatten(program)
    except DeepvisError:
        raise
    except Exception as exc:  # noqa: BLE001 (a broken archive raises many internal types)
        raise DeepvisError(f"{path} is a broken torch.export archive: {first_line(exc)}") from None
    module.deepvis_input_shape = _input_shape(program)
    _name_layers(module, program)
    return module


def _name_layers(module, program) -> None:
    """Give each InterpreterModule the class name of the module it was exported from (every
    view shows a layer's type, and PLUMBING and activation checks read it)."""
    types: dict[str, str] = {}
    for node in program.graph.nodes:
        for path, kind in (node.meta.get("nn_module_stack") or {}).values():
            name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
            types.setdefault(path, name.rsplit(".", 1)[-1])
    for path, sub in module.named_modules():
        if path in types and type(sub).__name__ == "InterpreterModule":
            sub.original_name = types[path]
    module.original_name = "ExportedProgram"  # the archive does not name the model's own class


def _input_shape(program) -> tuple[int, ...] | None:
    """The first user input's shape without its batch dimension, when every size is static."""
    from torch.export.graph_signature import InputKind

    for spec in program.graph_signature.input_specs:
        if spec.kind != InputKind.USER_INPUT:
            continue
        node = next((n for n in program.graph.nodes if n.op == "placeholder" and n.name == spec.arg.name), None)
        value = None if node is None else node.meta.get("val")
        if value is None or not hasattr(value, "shape"):
            return None
        try:
            return tuple(int(s) for s in value.shape[1:])
        except (TypeError, ValueError):  # a symbolic (dynamic) size
            return None
    return None
