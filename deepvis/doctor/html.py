"""The doctor's report as one self-contained HTML file: tables, SVG bar charts and the
thumbnails of the most confidently wrong inputs embedded as data URLs, no script, no network.
It opens in any browser and can be attached to a bug report or a CI artifact as it is."""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from deepvis.doctor import batchnorm
from deepvis.doctor.diagnose import DEAD_LIMIT, SATURATED_LIMIT

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#1d1f23;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.sub{color:#666}.flag{color:#a3300b}.ok{color:#2c7a3b}
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;text-align:right;border-bottom:1px solid #eee}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}tr.flagged td{background:#fdebe5}
.thumbs{display:flex;flex-wrap:wrap;gap:12px}.thumbs figure{margin:0;text-align:center;font-size:12px}
.thumbs img{image-rendering:pixelated;width:96px;height:96px;object-fit:contain;border:1px solid #ccc;background:#000}
svg text{font:11px system-ui,sans-serif}
"""


def render(report: dict, thumbnails: dict[int, np.ndarray] | None = None) -> str:
    thumbnails = thumbnails or {}
    skipped = f", {report['skipped']} unreadable skipped" if report["skipped"] else ""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>deepvis doctor: "
             f"{_e(report['model'])}</title><style>{STYLE}</style></head><body>",
             f"<h1>deepvis doctor: {_e(report['model'])}</h1>",
             f"<div class='sub'>{report['inputs']:,} inputs of {_e(report['data'])}{skipped}"
             f" · {report['seconds']['total']:.1f} s</div>"]
    parts.append(_flags(report))
    if report.get("notes"):
        parts.append("<ul>" + "".join(f"<li class='sub'>{_e(n)}</li>" for n in report["notes"]) + "</ul>")
    if report["classes"] is not None:
        parts.append(_classes(report["classes"], thumbnails, report))
    parts.append(_preprocessing(report["preprocessing"]))
    parts.append(_layers(report["layers"]))
    if report["batchnorm"]:
        parts.append(_batchnorms(report["batchnorm"]))
    if report["weights"]:
        parts.append(_weights(report["weights"]))
    parts.append("</body></html>")
    return "\n".join(parts)


def _e(text) -> str:
    return html.escape(str(text))


def _number(value, digits=3) -> str:
    return "–" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _percent(value) -> str:
    return "–" if value is None else f"{value:.1%}"


def _flags(report) -> str:
    if not report["flags"]:
        found = "<h2>Findings</h2><p class='ok'>Nothing flagged.</p>"
    else:
        items = "".join(f"<li><b>{_e(f['where'])}</b>: {_e(f['what'])}</li>" for f in report["flags"])
        found = f"<h2>Findings</h2><ul class='flag'>{items}</ul>"
    if report.get("advisories"):
        items = "".join(f"<li><b>{_e(a['where'])}</b>: {_e(a['what'])}</li>" for a in report["advisories"])
        found += f"<p class='sub'>Advisories (not faults):</p><ul class='sub'>{items}</ul>"
    return found


def _png(picture: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _classes(classes, thumbnails, report) -> str:
    out = [f"<h2>Classes</h2><p>Accuracy <b>{classes['accuracy']:.1%}</b> over {classes['inputs']:,} labelled "
           f"inputs.</p>"]
    if classes["most_confused"]:
        out.append("<p>Most confused: " + ", ".join(f"{_e(p['true'])} → {_e(p['predicted'])} ({p['count']})"
                                                    for p in classes["most_confused"]) + "</p>")
    wrong = [w for w in classes["confidently_wrong"] if w["input"] in thumbnails]
    if wrong:
        figures = "".join(f"<figure><img src='{_png(thumbnails[w['input']])}' alt='input {w['input']}'>"
                          f"<figcaption>#{w['input']}: {_e(w['true'])} read as {_e(w['predicted'])}<br>"
                          f"{w['confidence']:.0%} sure</figcaption></figure>" for w in wrong)
        out.append(f"<h3>Most confidently wrong</h3><div class='thumbs'>{figures}</div>")
    labels, confusion = classes["labels"], np.asarray(classes["confusion"])
    if len(labels) <= 30:
        top = max(1, int(confusion.max()))
        head = "".join(f"<th>{_e(label)}</th>" for label in labels)
        rows = []
        for label, row in zip(labels, confusion):
            cells = "".join(f"<td style='background:rgba(60,110,200,{0.85 * v / top:.2f})'>{v or ''}</td>"
                            for v in row)
            recall = classes["recall"].get(label)
            rows.append(f"<tr><td>{_e(label)}</td>{cells}<td>{_percent(recall)}</td></tr>")
        out.append(f"<h3>Confusion (rows: true, columns: predicted)</h3><table><tr><th></th>{head}"
                   f"<th>recall</th></tr>{''.join(rows)}</table>")
    return "".join(out)


def _preprocessing(pre) -> str:
    if not pre["variants"]:
        return "<h2>Input preprocessing</h2><p class='sub'>Not checked: the model is not a classifier.</p>"
    labelled = "accuracy" in pre["variants"][0]
    rows = "".join(
        f"<tr{' class=flagged' if v['name'] == pre['best'] and pre['best'] != 'declared' else ''}>"
        f"<td>{_e(v['name'])}{' (best)' if v['name'] == pre['best'] else ''}</td>"
        + (f"<td>{_percent(v.get('accuracy'))}</td>" if labelled else "")
        + f"<td>{_percent(v['confidence'])}</td><td>{v['entropy']:.3f}</td>"
        f"<td>{'yes' if v.get('collapsed') else ''}</td></tr>" for v in pre["variants"])
    head = ("<th>accuracy</th>" if labelled else "") + "<th>mean confidence</th><th>mean entropy</th><th>collapsed</th>"
    return (f"<h2>Input preprocessing</h2><p>Over the first {pre['inputs']} inputs; best: <b>{_e(pre['best'])}</b>"
            f"</p><table><tr><th>variant</th>{head}</tr>{rows}</table>")


def _bars(values: list[float | None], limit: float | None, width=1000, height=120) -> str:
    """An SVG bar per value (None: no bar), with the flag limit as a dashed line."""
    shown = [v for v in values if v is not None]
    top = max([*shown, limit or 0.0, 1e-9])
    step = width / max(1, len(values))
    bars = []
    for i, v in enumerate(values):
        if v is None:
            continue
        h = height * v / top
        colour = "#d0552c" if limit is not None and v >= limit else "#4a7fd0"
        bars.append(f"<rect x='{i * step:.1f}' y='{height - h:.1f}' width='{max(1.0, step * 0.8):.1f}' "
                    f"height='{h:.1f}' fill='{colour}'/>")
    if limit is not None:
        y = height - height * limit / top
        bars.append(f"<line x1='0' x2='{width}' y1='{y:.1f}' y2='{y:.1f}' stroke='#a3300b' stroke-dasharray='4 3'/>")
    return f"<svg width='{width}' height='{height + 4}' viewBox='0 0 {width} {height + 4}'>{''.join(bars)}</svg>"


def _layers(layers) -> str:
    dead = [row["dead_fraction"] for row in layers]
    chart = ""
    if any(v is not None for v in dead):
        chart = (f"<p class='sub'>Share of dead channels per layer, in execution order (dashed: the flag at "
                 f"{DEAD_LIMIT:.0%})</p>" + _bars(dead, DEAD_LIMIT))
    rows = "".join(
        f"<tr{' class=flagged' if row['flags'] else ''}><td>{_e(row['name'])}</td><td>{_e(row['type'])}</td>"
        f"<td>{_percent(row['dead_fraction'])}</td><td>{_percent(row['saturated_fraction'])}</td>"
        f"<td>{_percent(row['nonfinite_fraction']) if row['nonfinite_fraction'] else ''}</td>"
        f"<td>{_number(row['mean'])}</td><td>{_number(row['std'])}</td><td>{_e(', '.join(row['flags']))}</td></tr>"
        for row in layers)
    return (f"<h2>Layers</h2>{chart}<table><tr><th>layer</th><th>type</th><th>dead</th><th>saturated "
            f"(flag {SATURATED_LIMIT:.0%})</th><th>non-finite</th><th>mean</th><th>std</th><th>flags</th></tr>"
            f"{rows}</table>")


def _batchnorms(rows) -> str:
    chart = _bars([row["mean_abs_z"] for row in rows], batchnorm.MEAN_Z_LIMIT)
    table = "".join(f"<tr{' class=flagged' if row['flagged'] else ''}><td>{_e(row['name'])}</td>"
                    f"<td>{_number(row['mean_abs_z'])}</td><td>{_number(row['log_var_ratio'])}</td></tr>"
                    for row in rows)
    return (f"<h2>BatchNorm statistics against the data</h2><p class='sub'>Mean |z| of the data's channel means "
            f"under each layer's running statistics (dashed: the flag at {batchnorm.MEAN_Z_LIMIT:g}; log variance "
            f"ratio flagged past {batchnorm.LOG_VAR_LIMIT:.2f})</p>{chart}<table><tr><th>layer</th><th>mean |z|</th>"
            f"<th>log variance ratio</th></tr>{table}</table>")


def _weights(rows) -> str:
    from deepvis.doctor.spectrum import ALPHA_RANGE

    table = "".join(f"<tr{' class=flagged' if row['flags'] else ''}><td>{_e(row['name'])}</td><td>{_e(row['type'])}"
                    f"</td><td>{'x'.join(map(str, row['shape']))}</td><td>{_number(row['norm'])}</td>"
                    f"<td>{_percent(row['near_zero_fraction'])}</td><td>{_number(row['alpha'])}</td>"
                    f"<td>{_e(', '.join(row['flags'] + ([row['alpha_advisory']] if row['alpha_advisory'] else [])))}"
                    f"</td></tr>" for row in rows)
    return (f"<h2>Weights</h2><p class='sub'>Alpha: the power-law exponent of each weight matrix's eigenvalue "
            f"spectrum, fitted as WeightWatcher fits it; {ALPHA_RANGE[0]:g} to {ALPHA_RANGE[1]:g} is what its "
            f"authors call well trained (only for 50 eigenvalues or more)</p><table><tr><th>layer</th><th>type</th>"
            f"<th>shape</th><th>norm</th><th>near zero</th><th>alpha</th><th>flags</th></tr>{table}</table>")


def compare_page(report: dict, heatmap: np.ndarray, strip: np.ndarray | None) -> str:
    """``deepvis compare --out X.html``: the CKA matrix, the same-named layers' figures, and a
    timeline's table and filters."""
    rows = "".join(f"<tr><td>{_e(name)}</td><td>{value:.3f}</td><td>{_number(report['weight_change'].get(name))}</td>"
                   f"</tr>" for name, value in report["diagonal"].items())
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>deepvis compare</title><style>{STYLE}</style>"
             f"</head><body><h1>deepvis compare: {_e(report['model_a'])} against {_e(report['model_b'])}</h1>"
             f"<div class='sub'>{report['inputs']:,} inputs of {_e(report['data'])} · {_e(report['method'])}</div>"]
    if report["agreement"] is not None:
        parts.append(f"<p>Predictions agree on <b>{report['agreement']:.1%}</b> of the inputs.</p>")
    parts.append(f"<img src='{_png(heatmap)}' alt='CKA matrix'>")
    if rows:
        parts.append(f"<h2>Same-named layers</h2><table><tr><th>layer</th><th>CKA</th><th>weight change</th></tr>"
                     f"{rows}</table>")
    if report["timeline"]:
        names = list(report["timeline"][0]["cka"])
        head = "".join(f"<th>{_e(n)}</th>" for n in names)
        body = "".join(f"<tr><td>{_e(step['checkpoint'])}</td>" + "".join(f"<td>{step['cka'][n]:.3f}</td>" for n in names)
                       + "</tr>" for step in report["timeline"])
        parts.append(f"<h2>Timeline: each layer's CKA to the last checkpoint</h2><table><tr><th>checkpoint</th>{head}"
                     f"</tr>{body}</table>")
        if strip is not None:
            parts.append(f"<img src='{_png(strip)}' alt='first-layer filters per checkpoint'>")
    parts.append("</body></html>")
    return "\n".join(parts)
