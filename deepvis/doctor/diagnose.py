"""The doctor's pass: a model over a dataset, every figure of its report at once.

One forward pass per batch collects every layer's statistics inside the hooks
(deepvis.doctor.layerstats), what reaches each BatchNorm layer (deepvis.doctor.batchnorm)
and, for a classifier, its predictions against the labels (deepvis.doctor.classes). The
preprocessing variants then run on the first ``VARIANT_INPUTS`` inputs
(deepvis.doctor.preprocessing), and the weights are read without data
(deepvis.doctor.weights). The report is a plain dict: the JSON of ``deepvis doctor --json``.

Flags that rest on statistics (dead or saturated layers, BatchNorm disagreement) need
``MIN_FLAG_INPUTS`` inputs; with fewer, the figures come without them, and the report says so.
Non-finite values and a wrong preprocessing are flagged on any number of inputs.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import torch

from deepvis.doctor import batchnorm, preprocessing
from deepvis.doctor.classes import ClassTally, match_labels
from deepvis.doctor.layerstats import LayerStats, activation_kind
from deepvis.errors import Cancelled, DeepvisError

MIN_FLAG_INPUTS = 100
VARIANT_INPUTS = 200
# A layer is flagged when at least this share of its channels never fire (or sit at a rail).
# Healthy trained nets keep dead ReLU channels: the bundled digits_cnn, 99.7 % accurate on
# the digits, has 34 % of relu3's and relu4's channels dead over all 1,797 of them, and
# digits_vae 76 % of its encoder's last hidden layer (128 units feeding a 16-d latent: a VAE
# whose KL term starves units, a known way VAEs lose capacity while still working);
# efficientnet_lite0 over 500 crops of the bundled photos at most 12.5 %. A layer four fifths
# dead is a fault (dying ReLUs from a too-large learning rate, biases driven negative); more
# than half dead is said as an advisory, which --strict does not fail on.
DEAD_LIMIT = 0.8
DEAD_ADVISORY = 0.5
SATURATED_LIMIT = 0.5
THUMBNAIL_SIDE = 64


def diagnose(model, dataset, limit: int | None = None, batch: int = 32, probe=None, with_weights: bool = True,
             progress=None, cancel=None) -> dict:
    """The doctor's report of ``model`` (a LoadedModel) over ``dataset`` (deepvis.io.datasets).
    ``progress(stage, done, total)``; ``cancel`` (a threading.Event) stops between batches."""
    from deepvis.core.probe import Probe

    if model.signal is not None:
        raise DeepvisError(f"{model.name} takes signals: the doctor reads pictures (a folder or digits)")
    probe = probe or Probe(model.module, model.example_input())
    total = len(dataset) if limit is None else min(limit, len(dataset))
    if total < 1:
        raise DeepvisError("no inputs to examine")
    started = time.perf_counter()
    run = DoctorPass(model, probe, dataset, total)
    run.forward_all(batch, progress, cancel)
    seconds_pass = time.perf_counter() - started
    report = {"model": model.name, "data": dataset.name, "inputs": run.seen, "skipped": len(run.skipped),
              "layers": run.layer_rows(), "first_nonfinite": run.first_nonfinite(),
              "batchnorm": run.batchnorm_rows()}
    variant_start = time.perf_counter()
    report["preprocessing"] = run.preprocessing(batch, progress, cancel)
    seconds_variants = time.perf_counter() - variant_start
    report["weights"] = weight_rows(model, progress, cancel) if with_weights else []
    report["classes"] = run.classes()
    report["flags"] = findings(report)
    report["advisories"] = advisories(report)
    report["notes"] = run.notes()
    report["seconds"] = {"pass": round(seconds_pass, 3), "preprocessing": round(seconds_variants, 3),
                         "total": round(time.perf_counter() - started, 3)}
    report["thumbnails"] = run.thumbnails  # input index -> uint8 picture; popped before JSON
    return report


def weight_rows(model, progress=None, cancel=None) -> list[dict]:
    from deepvis.doctor.weights import weight_figures

    return weight_figures(model.module, progress, cancel)


class DoctorPass:
    """The state of one pass: statistics per layer and per BatchNorm, predictions, and the
    inputs the preprocessing variants will see again."""

    def __init__(self, model, probe, dataset, total):
        self.model, self.probe, self.dataset, self.total = model, probe, dataset, total
        modules = dict(model.module.named_modules())
        from deepvis.core.probe import PLUMBING

        # Dropout, Flatten and Identity pass their input on: their rows would repeat the last one.
        self.layers = [layer for layer in probe.layers if layer.type_name not in PLUMBING]
        self.stats = {layer.name: LayerStats(layer.name, layer.type_name,
                                             activation_kind(modules.get(layer.path)) if layer.path else None)
                      for layer in self.layers}
        order = {layer.path: i for i, layer in reversed(list(enumerate(self.layers)))}
        checkable = [(path, m) for path, m in model.module.named_modules() if batchnorm.checkable(m)]
        checkable.sort(key=lambda item: order.get(item[0], len(order)))
        self.batchnorms = {path: batchnorm.BatchNormInput(path, m) for path, m in checkable}
        self.classifies = model.task == "classification" and not model.head.detections
        self.classes_count = None
        self.targets_all: list[int | None] = []
        self.tally: ClassTally | None = None
        self.fitted_kept: list[np.ndarray] = []  # the inputs the preprocessing variants see again
        self.kept_indices: list[int] = []
        self.kept_probs: list[torch.Tensor] = []  # the pass's own probabilities for those inputs
        self.thumbnails: dict[int, np.ndarray] = {}
        self.skipped: list[str] = []
        self.seen = 0

    # --- the pass ------------------------------------------------------------------------

    def forward_all(self, batch, progress, cancel):
        pre = self.model.preprocessor
        pending_fitted, pending_index = [], []
        for i in range(self.total):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            try:
                fitted = pre.fit(self.dataset.image(i))
            except DeepvisError as exc:
                self.skipped.append(str(exc))
                continue
            pending_fitted.append(fitted)
            pending_index.append(i)
            if len(pending_fitted) == batch or i == self.total - 1:
                self.forward_batch(pending_fitted, pending_index)
                pending_fitted, pending_index = [], []
                if progress is not None:
                    progress("inputs", i + 1, self.total)
        if pending_fitted:
            self.forward_batch(pending_fitted, pending_index)
        if not self.seen:
            raise DeepvisError(f"none of the {self.total} inputs of {self.dataset.name} could be read "
                               f"(e.g. {self.skipped[0] if self.skipped else 'none'})")

    def forward_batch(self, fitted: list[np.ndarray], indices: list[int]) -> None:
        """One batch of pictures fitted to the model (uint8 H x W x C) and their dataset indices."""
        pre = self.model.preprocessor
        x = torch.from_numpy(np.stack([pre.normalize(f) for f in fitted])).to(self.model.device)
        owner = threading.get_ident()
        handles = []
        for path, record in self.batchnorms.items():
            module = self.model.module.get_submodule(path)

            def before(_module, inputs, record=record):
                if threading.get_ident() == owner and inputs and isinstance(inputs[0], torch.Tensor):
                    record.observe(inputs[0])
            handles.append(module.register_forward_pre_hook(before))
        try:
            with torch.inference_mode():
                output, _ = self.probe.capture(x, [layer.name for layer in self.layers],
                                               transform=lambda name, t: self.stats[name].observe(t))
        finally:
            for handle in handles:
                handle.remove()
        self.seen += len(indices)
        room = max(0, VARIANT_INPUTS - len(self.fitted_kept))
        self.fitted_kept.extend(fitted[:room])
        self.kept_indices.extend(indices[:room])
        if self.classifies:
            probs = self._tally(output, fitted, indices)
            if probs is not None and room:
                # The declared preprocessing is what this pass ran: its variant is not run again.
                self.kept_probs.append(probs[:room].float().cpu())

    def _tally(self, output, fitted, indices) -> torch.Tensor | None:
        """Count the batch's predictions against the labels; returns its class probabilities."""
        from deepvis.core.predictions import class_probabilities

        scores = self.model.main_output(output)
        if scores.ndim != 2:
            self.classifies = False
            return None
        probs = class_probabilities(scores, self.model.head.activation, self.model.multilabel)
        if self.classes_count is None:
            self.classes_count = probs.shape[1]
            self.targets_all = match_labels(self.dataset.labels[:self.total], self.model.labels, self.classes_count)
            if any(t is not None for t in self.targets_all):
                self.tally = ClassTally(self.classes_count)
        top, predicted = probs.max(1)
        if self.tally is None:
            return probs
        for k, i in enumerate(indices):
            self.tally.add(i, self.targets_all[i], int(predicted[k]), float(top[k]))
            if any(-item[1] == i for item in self.tally.wrong):  # among the most confidently wrong so far
                self.thumbnails[i] = _thumbnail(fitted[k])
        if len(self.thumbnails) > 4 * len(self.tally.wrong) + 32:
            keep = {-item[1] for item in self.tally.wrong}
            self.thumbnails = {i: t for i, t in self.thumbnails.items() if i in keep}
        return probs

    # --- figures ---------------------------------------------------------------------------

    def enough(self) -> bool:
        return self.seen >= MIN_FLAG_INPUTS

    def layer_rows(self) -> list[dict]:
        rows = []
        first = self.first_nonfinite()
        for layer in self.layers:
            s = self.stats[layer.name]
            flags = []
            if self.enough() and s.dead_fraction is not None and s.dead_fraction >= DEAD_LIMIT:
                flags.append("dead")
            if self.enough() and s.saturated_fraction is not None and s.saturated_fraction >= SATURATED_LIMIT:
                flags.append("saturated")
            if first is not None and first["layer"] == layer.name:
                flags.append("nonfinite")
            rows.append({"name": layer.name, "type": layer.type_name, "shape": list(layer.shape),
                         "dead_fraction": s.dead_fraction, "dead_channels": s.dead_channels,
                         "saturated_fraction": s.saturated_fraction, "nonfinite_fraction": s.nonfinite_fraction,
                         "mean": s.finite_mean, "std": s.std, "flags": flags})
        return rows

    def first_nonfinite(self) -> dict | None:
        for layer in self.layers:
            s = self.stats[layer.name]
            if s.inputs_nonfinite:
                return {"layer": layer.name, "inputs": s.inputs_nonfinite}
        return None

    def batchnorm_rows(self) -> list[dict]:
        rows = []
        for record in self.batchnorms.values():
            figures = record.figures()
            rows.append({**figures, "flagged": self.enough() and batchnorm.flagged(figures)})
        return rows

    def preprocessing(self, batch, progress, cancel) -> dict:
        if not self.classifies or not self.fitted_kept:
            return {"inputs": 0, "variants": [], "best": None, "margin": None}
        spec = self.model.spec
        fitted = np.stack(self.fitted_kept)
        targets = [self.targets_all[i] if self.tally is not None else None for i in self.kept_indices]
        names = preprocessing.variant_names(spec)
        variants = []
        for k, name in enumerate(names):
            probs = list(self.kept_probs) if name == preprocessing.DECLARED else []
            for start in range(0 if not probs else len(fitted), len(fitted), batch):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                x = preprocessing.variant_batch(fitted[start:start + batch], spec, name).to(self.model.device)
                with torch.inference_mode():
                    probs.append(self._probabilities(self.model.module(x)))
            figures = preprocessing.score_variant(torch.cat(probs), targets, self.model.multilabel)
            variant = {"name": name, **figures}
            preprocessing.mark_collapsed(variant, len(fitted))
            variants.append(variant)
            if progress is not None:
                progress("preprocessing", k + 1, len(names))
        best, margin = preprocessing.best_variant(variants)
        return {"inputs": len(fitted), "variants": variants, "best": best, "margin": margin}

    def _probabilities(self, output) -> torch.Tensor:
        from deepvis.core.predictions import class_probabilities

        return class_probabilities(self.model.main_output(output), self.model.head.activation,
                                   self.model.multilabel).float().cpu()

    def classes(self) -> dict | None:
        if self.tally is None:
            return None
        return self.tally.figures(self.model.labels)

    def notes(self) -> list[str]:
        notes = []
        if not self.enough():
            notes.append(f"{self.seen} inputs: statistical flags (dead, saturated, BatchNorm) need at least "
                         f"{MIN_FLAG_INPUTS}; the figures are given without them")
        if self.skipped:
            notes.append(f"{len(self.skipped)} unreadable inputs skipped, e.g. {self.skipped[0]}")
        if self.classifies and self.tally is None and self.dataset.labelled:
            notes.append(f"the labels of {self.dataset.name} name none of {self.model.name}'s classes: no accuracy; "
                         f"the preprocessing is judged by confidence and entropy")
        elif self.tally is not None and self.tally.unmatched:
            notes.append(f"{self.tally.unmatched} inputs' labels name no class of {self.model.name}: left out of "
                         f"the accuracy")
        return notes


def _thumbnail(fitted: np.ndarray) -> np.ndarray:
    from deepvis.core.inputspec import resample

    picture = fitted if fitted.shape[2] == 3 else np.repeat(fitted, 3, axis=2)
    h, w = picture.shape[:2]
    scale = THUMBNAIL_SIDE / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if scale >= 2:  # a small input (an 8x8 digit) enlarged by whole pixels, not blurred
        k = int(scale)
        return picture.repeat(k, 0).repeat(k, 1)
    return resample(np.ascontiguousarray(picture), *size)


def findings(report: dict) -> list[dict]:
    """Everything flagged, one entry per finding, in the order a reader should look."""
    flags = []
    first = report["first_nonfinite"]
    if first is not None:
        flags.append({"where": first["layer"], "what": f"NaN or infinite values first appear here "
                                                        f"({first['inputs']} inputs)"})
    bn_first = next((row for row in report["batchnorm"] if row["flagged"]), None)
    if bn_first is not None:
        flags.append({"where": bn_first["name"], "what": f"BatchNorm running statistics do not match the data "
                                                         f"(mean |z| {bn_first['mean_abs_z']:.2f}, log variance "
                                                         f"ratio {bn_first['log_var_ratio']:.2f}); later "
                                                         f"BatchNorm layers may only inherit it"})
    pre = report["preprocessing"]
    if pre["best"] not in (None, preprocessing.DECLARED):
        unit = "accuracy" if pre["variants"] and "accuracy" in pre["variants"][0] else "nats of entropy"
        amount = f"{pre['margin']:.1%} {unit}" if unit == "accuracy" else f"{pre['margin']:.2f} {unit}"
        flags.append({"where": "input", "what": f"the model reads its input better as {pre['best']} than as "
                                                f"declared (by {amount})"})
    for row in report["layers"]:
        for flag in row["flags"]:
            if flag == "dead":
                flags.append({"where": row["name"], "what": f"{row['dead_fraction']:.0%} of its channels never "
                                                            f"fire"})
            elif flag == "saturated":
                flags.append({"where": row["name"], "what": f"{row['saturated_fraction']:.0%} of its channels are "
                                                            f"saturated"})
    for row in report["weights"]:
        for flag in row["flags"]:
            flags.append({"where": row["name"], "what": f"weights: {flag}"})
    return flags


def advisories(report: dict) -> list[dict]:
    """What deserves a look without being a fault: layers more than half dead, and weight
    spectra outside WeightWatcher's range (see deepvis.doctor.weights)."""
    from deepvis.doctor.spectrum import ALPHA_RANGE

    advice = [{"where": row["name"], "what": f"{row['dead_fraction']:.0%} of its channels never fire"}
              for row in report["layers"] if row["dead_fraction"] is not None and "dead" not in row["flags"]
              and row["dead_fraction"] >= DEAD_ADVISORY and report["inputs"] >= MIN_FLAG_INPUTS]
    low, high = ALPHA_RANGE
    return advice + [{"where": row["name"], "what": f"weight spectrum alpha {row['alpha']:.2f}, "
                                                    f"{row['alpha_advisory']} by WeightWatcher's {low:g} to {high:g}"}
                     for row in report["weights"] if row.get("alpha_advisory")]
