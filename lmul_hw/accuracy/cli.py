"""The ``lmul-hw accuracy`` subcommand: options, validation, running, output."""

from __future__ import annotations

import sys
import time

from ..cli import seed_type
from .analysis import BYTES_PER_SAMPLE, DEFAULT_SAMPLES, Settings, analyse
from .operands import DISTRIBUTIONS
from .paper import claims as paper_claims
from .paper import table7

__all__ = ["add_arguments", "run_cli"]

DEFAULT_FORMATS = ("bf16", "e4m3", "e5m2")


def add_arguments(parser) -> None:
    parser.add_argument("--format", action="append", metavar="F",
                        help="operand formats, comma-separated or repeated: bf16 (L-Mul k=1..7 vs fp8 on "
                             "bf16 operands), e4m3, e5m2 (native fp8, distributions and all finite pairs), fp16 "
                             f"(default: {','.join(DEFAULT_FORMATS)})")
    parser.add_argument("--dist", action="append", metavar="D",
                        help=f"operand distributions, comma-separated or repeated: {'|'.join(DISTRIBUTIONS)} "
                             "(default: all)")
    parser.add_argument("--out", metavar="DIR", help="write CSV, JSON, a text copy and PNG plots into DIR")
    parser.add_argument("--seed", type=seed_type, default=0, help="random seed (default 0)")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES,
                        help=f"operand pairs per distribution (default {DEFAULT_SAMPLES}); dot products use "
                             "2*N terms per length")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def _split(values, default):
    if not values:
        return tuple(default)
    out = []
    for v in values:
        out += [x.strip().lower() for x in v.split(",") if x.strip()]
    if not out:
        raise ValueError("empty list of names")
    return tuple(dict.fromkeys(out))


def run_cli(args) -> int:
    from ..cli import check_count
    check_count("--samples", args.samples, 1, BYTES_PER_SAMPLE)
    dists = _split(args.dist, DISTRIBUTIONS)
    for d in dists:
        if d not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {d!r}: use one of {', '.join(DISTRIBUTIONS)}")
    settings = Settings(formats=_split(args.format, DEFAULT_FORMATS), dists=dists, samples=args.samples,
                        seed=args.seed)
    out_dir = None
    if args.out:
        from ..files import output_dir
        out_dir = output_dir(args.out)          # fail before the work, not after it
    start = time.perf_counter()

    def progress(message):
        print(f"accuracy: [{time.perf_counter() - start:5.1f} s] {message}", file=sys.stderr, flush=True)

    report = analyse(settings, progress)
    rows7 = table7(report=report) if "bf16" in settings.formats else []
    verdicts = paper_claims(report)
    from .output import render_text, write_files
    text = render_text(report, rows7, verdicts)
    sys.stdout.write(text)
    if out_dir is not None:
        paths = write_files(report, rows7, verdicts, text, out_dir, plots=not args.no_plots, progress=progress)
        print(f"wrote {len(paths)} files to {out_dir} ({time.perf_counter() - start:.1f} s in all)")
    return 0
