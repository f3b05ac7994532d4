"""Class names: from a zoo entry, weights metadata, or a user's file."""

import json
from pathlib import Path

from deepvis.errors import DeepvisError


def read_labels(path) -> list[str]:
    """A text file with one label per line, or JSON: a list, or a mapping from index to name."""
    path = Path(path)
    if not path.is_file():
        raise DeepvisError(f"labels file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeepvisError(f"cannot read labels file {path}: {exc}") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeepvisError(f"labels file {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
        if isinstance(data, list):
            if not data:
                raise DeepvisError(f"labels file {path} holds an empty list")
            return [str(v) for v in data]
        if isinstance(data, dict):
            if not data:
                raise DeepvisError(f"labels file {path} holds an empty mapping")
            try:
                by_index = {int(k): v for k, v in data.items()}
            except ValueError:
                raise DeepvisError(f"labels file {path}: JSON keys must be class indices") from None
            # ImageNet's class index JSON maps i -> [wnid, name]; take the readable name.
            names = {i: (v[-1] if isinstance(v, list) and v else v) for i, v in by_index.items()}
            return [str(names.get(i, f"class {i}")) for i in range(max(names) + 1)]
        raise DeepvisError(f"labels file {path}: expected a JSON list or object")
    labels = [line.strip() for line in text.splitlines()]
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        raise DeepvisError(f"labels file {path} is empty")
    return labels


def label_of(labels: list[str] | None, index: int) -> str:
    if labels and 0 <= index < len(labels):
        return labels[index]
    return f"class {index}"
