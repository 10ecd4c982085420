"""Energy per inference from MiniLM's operand streams (lmul_hw.workload.energy): its cost per
configuration and how far the sampled estimate is from replaying every stream.

1. Time: the workload's sample (512 streams per kind) of a few texts through ``inference_energy``,
   per configuration: the first call (Verilog, synthesis from the cache, netlist load) and a second.
2. Sampling error: one short text, every output element of every product replayed through the PE
   (the full run), against samples of several sizes drawn with several seeds, as the workload draws
   them.  Prints, per configuration and sample size, the largest and the root-mean-square relative
   error of pJ per inference over the seeds, and the same for the worst product kind.

    python benchmarks/bench_workload_energy.py                    # about 20 minutes on 2 cores
    python benchmarks/bench_workload_energy.py --configs lmul_bf16_k7_c8 --sizes 32,512 --seeds 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from lmul_hw.config import FPMulConfig, LMulConfig
from lmul_hw.workload import minilm
from lmul_hw.workload.energy import inference_energy
from lmul_hw.workload.numerics import WHERE, CoreProducts, Numerics, encode_operand
from lmul_hw.workload.streams import PRODUCT_KINDS, ProductSample

CONFIGS = {n.name: n for n in (Numerics(LMulConfig("bf16", k=7)), Numerics(FPMulConfig("bf16", subnormals="ftz")),
                               Numerics(LMulConfig("e4m3")), Numerics(FPMulConfig("e4m3")))}
TIMING_TEXTS = ["The train to the coast leaves at seven.", "Bake the bread until the crust is golden.",
                "Interest rates rose again this quarter."]
SHORT_TEXT = "A short sentence about the weather."
#: Lanes of the full replay: tens of millions of beats, so many lanes (the cost of a cycle grows slowly).
FULL_LANES = 4096


class _Recorder:
    """A product function that records the encoded operands of every core product, then runs it."""

    def __init__(self, products: CoreProducts):
        self.products, self.calls = products, {k: [] for k in PRODUCT_KINDS}

    def __call__(self, kind, X, W):
        if kind in WHERE[self.products.numerics.where]:
            fmt = self.products.numerics.fmt
            self.calls[kind].append((encode_operand(X, fmt)[0], encode_operand(W, fmt)[0]))
        return self.products(kind, X, W)


def full_samples(calls) -> list[ProductSample]:
    """Every output element (i, j) of every call, row by row: A[i, :] and B[:, j]."""
    out = []
    for kind, products in calls.items():
        if not products:
            continue
        a = np.concatenate([np.repeat(A, B.shape[1], axis=0).ravel() for A, B in products])
        b = np.concatenate([np.tile(B.T, (A.shape[0], 1)).ravel() for A, B in products])
        lengths = np.concatenate([np.full(A.shape[0] * B.shape[1], A.shape[1]) for A, B in products])
        macs = sum(A.shape[0] * A.shape[1] * B.shape[1] for A, B in products)
        out.append(ProductSample(kind, macs, a, b, lengths))
    return out


def samples_of(model, ids_list, numerics, size, seed, record=False):
    products = CoreProducts(numerics, streams_per_kind=size, seed=seed)
    product = _Recorder(products) if record else products
    for ids in ids_list:
        model.encode(ids, product)
    return products.samples(), (product.calls if record else None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, of: " + ", ".join(CONFIGS))
    p.add_argument("--sizes", default="32,128,512",
                   help="streams per kind of the compared samples (default %(default)s)")
    p.add_argument("--seeds", type=int, default=4, help="samples drawn per size (default 4)")
    p.add_argument("--text", default=SHORT_TEXT, help="the short text of the full run")
    args = p.parse_args(argv)
    names = args.configs.split(",")
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration(s) {', '.join(unknown)}")
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        p.error(f"--sizes takes comma-separated integers, not {args.sizes!r}")
    model = minilm.load()
    timing_ids = [model.tokenize(t) for t in TIMING_TEXTS]
    short_ids = model.tokenize(args.text)
    print(f"load average {os.getloadavg()[0]:.2f}; timing on {len(TIMING_TEXTS)} texts "
          f"({sum(map(len, timing_ids))} tokens); full run on {args.text!r} ({len(short_ids)} tokens)")

    print("\n1. seconds per configuration (512 streams per kind)")
    print(f"{'configuration':22} {'first call':>11} {'again':>8} {'beats':>10} {'pJ/mult':>8} {'pJ/MAC':>8} "
          f"{'clock':>6}")
    for name in names:
        samples, _ = samples_of(model, timing_ids, CONFIGS[name], 512, 0)
        t0 = time.perf_counter()
        inference_energy(CONFIGS[name].pe, samples)
        t1 = time.perf_counter()
        e = inference_energy(CONFIGS[name].pe, samples)
        t2 = time.perf_counter()
        print(f"{name:22} {t1 - t0:10.1f}s {t2 - t1:7.1f}s {sum(s.a.size for s in samples):10,} "
              f"{e.pj_per_multiply:8.4f} {e.pj_per_mac:8.4f} {e.clock_share:6.1%}", flush=True)

    print(f"\n2. sampling error against the full run ({args.seeds} seeds per size; error = sampled / full - 1)")
    for name in names:
        numerics = CONFIGS[name]
        _, calls = samples_of(model, [short_ids], numerics, 1, 0, record=True)
        full_s = full_samples(calls)
        t0 = time.perf_counter()
        full = inference_energy(numerics.pe, full_s, lanes=FULL_LANES)
        beats = sum(s.a.size for s in full_s)
        print(f"{name}: full run {beats:,} beats in {time.perf_counter() - t0:.0f} s: "
              f"{full.pj_per_mac:.5f} pJ/MAC, {full.pj_per_multiply:.5f} pJ/mult, "
              f"{full.pj_total / 1e6:.4f} µJ", flush=True)
        print("  per kind, full: " + ", ".join(f"{k.kind} {k.pj_per_mac:.4f}" for k in full.kinds))
        full_kind = {k.kind: k for k in full.kinds}
        for size in sizes:
            err, mul_err, kind_err = [], [], {}
            for seed in range(args.seeds):
                samples, _ = samples_of(model, [short_ids], numerics, size, seed)
                e = inference_energy(numerics.pe, samples)
                err.append(e.pj_total / full.pj_total - 1)
                mul_err.append(e.pj_per_multiply / full.pj_per_multiply - 1)
                for k in e.kinds:
                    kind_err.setdefault(k.kind, []).append(k.pj_per_mac / full_kind[k.kind].pj_per_mac - 1)
            worst = max(kind_err, key=lambda k: np.max(np.abs(kind_err[k])))
            print(f"  {size:5} streams/kind: per inference max |err| {np.max(np.abs(err)):.3%} "
                  f"rms {np.sqrt(np.mean(np.square(err))):.3%}; per multiply max {np.max(np.abs(mul_err)):.3%}; "
                  f"worst kind {worst} max {np.max(np.abs(kind_err[worst])):.3%} "
                  f"rms {np.sqrt(np.mean(np.square(kind_err[worst]))):.3%}", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
