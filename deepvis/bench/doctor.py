"""``deepvis bench doctor``: the cost of the doctor's statistics pass against bare forward passes
over the same inputs, in the same run (alternating rounds, medians), the preprocessing
variants timed apart, and CKA of every layer pair of two digits_cnn checkpoints over
scikit-learn's 1,797 digits.

Both sides of the ratio start from pictures already decoded and fitted to the model: each
batch is normalised and run forward; the doctor's side also computes every layer's
statistics in the hooks and what reaches each BatchNorm. The figures found on the generated
inputs are reported too (the bundled model should raise none).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from deepvis.atlas.demo import write_photo_folder


def bench_doctor(model, input_spec=None, inputs: int = 500, batch: int = 32, rounds: int = 2) -> dict:
    from deepvis.core.probe import Probe
    from deepvis.doctor.diagnose import DoctorPass, advisories, findings
    from deepvis.io.datasets import folder_dataset

    scratch = Path(tempfile.mkdtemp(prefix="deepvis-bench-doctor-"))
    try:
        folder = Path(input_spec) if input_spec else scratch / "photos"
        if not input_spec:
            write_photo_folder(folder, inputs)
        dataset = folder_dataset(folder)
        count = min(inputs, len(dataset))
        pre = model.preprocessor
        fitted = [pre.fit(dataset.image(i)) for i in range(count)]
        probe = Probe(model.module, model.example_input())
        batches = [(fitted[i:i + batch], list(range(i, min(i + batch, count)))) for i in range(0, count, batch)]

        def bare():
            with torch.inference_mode():
                for pictures, _ in batches:
                    model.module(torch.from_numpy(np.stack([pre.normalize(p) for p in pictures])).to(model.device))

        def doctor():
            run = DoctorPass(model, probe, dataset, count)
            for pictures, indices in batches:
                run.forward_batch(pictures, indices)
            return run

        bare()  # warm-up: allocator, thread pool
        bare_s, doctor_s, run = [], [], None
        for _ in range(rounds):
            start = time.perf_counter()
            bare()
            bare_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            run = doctor()
            doctor_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        preprocessing = run.preprocessing(batch, None, None)
        variants_s = time.perf_counter() - start
        report = {"inputs": run.seen, "layers": run.layer_rows(), "first_nonfinite": run.first_nonfinite(),
                  "batchnorm": run.batchnorm_rows(), "preprocessing": preprocessing, "weights": []}
        flags = findings(report)
        cka_s, cka_layers = _cka_digits()
        return {
            "benchmark": "doctor", "model": model.name, "device": str(model.device),
            "input": str(input_spec or f"{count} generated JPEGs of the bundled photos"), "inputs": count,
            "batch": batch, "torch_threads": torch.get_num_threads(), "rounds": rounds,
            "bare_s": [round(s, 3) for s in bare_s], "doctor_s": [round(s, 3) for s in doctor_s],
            "ratio": round(statistics.median(doctor_s) / statistics.median(bare_s), 3),
            "layers": len(report["layers"]), "batchnorm_layers": len(report["batchnorm"]),
            "preprocessing_variants": len(preprocessing["variants"]), "preprocessing_inputs": preprocessing["inputs"],
            "preprocessing_s": round(variants_s, 3),
            "flags": [f"{flag['where']}: {flag['what']}" for flag in flags],
            "advisories": len(advisories(report)),
            "cka_digits_s": cka_s, "cka_digits_layer_pairs": cka_layers,
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _cka_digits() -> tuple[float, int]:
    """Seconds to compare two digits_cnn checkpoints (the bundled one and a perturbed copy)
    layer pair by layer pair over the 1,797 digits, models loaded beforehand."""
    from deepvis.core.loading import load_model
    from deepvis.doctor.compare import compare
    from deepvis.io.datasets import digits_dataset

    a, b = load_model("digits_cnn"), load_model("digits_cnn")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in b.module.parameters():
            parameter.add_(0.3 * parameter.std() * torch.randn(parameter.shape, generator=generator))
    dataset = digits_dataset()
    start = time.perf_counter()
    report = compare(a, b, dataset)
    return round(time.perf_counter() - start, 3), len(report["layers_a"]) * len(report["layers_b"])
