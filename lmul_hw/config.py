"""Validated, frozen configuration objects: one of them walks through model, hardware, Verilog,
simulation, synthesis and report (DESIGN.md).  Every check of SPEC §2-§5 happens here, once."""

from __future__ import annotations

import dataclasses
import importlib
import json
import numbers
import re
from dataclasses import dataclass

import numpy as np

from .formats import UNIT_MAX_WIDTH, Format, accumulator_width, get_format, product_format

__all__ = ["LMulConfig", "FPMulConfig", "CoreConfig", "AxisCoreConfig", "PEConfig", "default_offset_exp", "config_from_json",
           "core_unit", "check_exact_accumulator", "exact_accumulator_width", "check_name", "check_int",
           "CORE_FORMATS", "ARRAY_FORMATS", "MAX_ACC_WIDTH", "MAX_NAME_LENGTH", "Kind", "kind_of", "KINDS", "SPECIAL_FLAGS",
           "KULISCH_READOUT_STAGES", "INTERFACES"]

OVERFLOW_MODES = ("ieee", "saturate")
SUBNORMAL_MODES = ("full", "ftz")
CORE_FORMATS = ("e4m3", "e5m2", "fp16", "bf16")
#: Operand formats of PEs and cores: fp32 serves the paper's own setting and, having no exact
#: accumulator under MAX_ACC_WIDTH bits, takes fp32 accumulation only (SPEC §4).
ARRAY_FORMATS = CORE_FORMATS + ("fp32",)
MAX_ACC_WIDTH = 128
MAX_LATENCY = 4
#: Longest module name accepted: names become file names (``NAME.v``), which most file systems cap at 255 bytes.
MAX_NAME_LENGTH = 200


def default_offset_exp(k: int) -> int:
    """The paper's l(k) (Luo & Sun, arXiv 2410.00907, eq. 4): k for k <= 3, 3 for k = 4, 4 above."""
    return k if k <= 3 else 3 if k == 4 else 4


def _option(default, help: str, **cli):
    """A unit configuration field that the command line offers as ``--name`` (``cli``: argparse's type,
    choices and required, and ``exclusive``, a group of options that exclude each other)."""
    if cli.get("required"):
        return dataclasses.field(metadata={"help": help, **cli})
    return dataclasses.field(default=default, metadata={"help": help, **cli})


def _set(obj, **fields):
    for key, value in fields.items():
        object.__setattr__(obj, key, value)


def _check_choice(what: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(map(str, choices))}, not {value!r}")


def check_int(what: str, value, lo: int, hi: int) -> int:
    """``value`` as a Python int within lo..hi: any integer (numpy integers too), never a bool."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{what} must be an integer, not {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{what} = {value} is out of range {lo}..{hi}")
    return value


def _unit_format(fmt) -> Format:
    f = get_format(fmt)
    if f.width > UNIT_MAX_WIDTH:
        raise ValueError(f"operand format {f.name} is {f.width} bits; units take at most {UNIT_MAX_WIDTH}")
    return f


def _unit_name(stem: str, f: Format, g: Format, overflow: str, latency: int) -> str:
    """The default module name: what the unit is, then what differs from the defaults."""
    parts = [stem]
    if g != f:
        parts.append(f"to_{g.name}")
    if overflow != "ieee":
        parts.append("sat")
    if latency:
        parts.append(f"l{latency}")
    return "_".join(parts)


class _Serialisable:
    def to_dict(self) -> dict:
        d = {"type": type(self).__name__}
        for field in dataclasses.fields(self):
            v = getattr(self, field.name)
            d[field.name] = v.name if isinstance(v, Format) else v
        if d.get("offset_exp") is not None:   # offset was derived from it
            del d["offset"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class LMulConfig(_Serialisable):
    """An L-Mul unit (SPEC §2). ``offset`` is resolved to the integer c on construction;
    ``offset_exp`` is kept only when it was given (or is the paper's default)."""
    fmt: Format | str = _option(None, "operand format: e4m3, e5m2, bf16, fp16, fp32 or eXmY", required=True)
    k: int | None = _option(None, "operand mantissa bits used (default: all)", type=int)
    offset_exp: int | None = _option(None, "offset exponent l: c = 2^(k-l) (default: the paper's l(k))", type=int,
                                     exclusive="offset")
    offset: int | None = _option(None, "integer offset c, 0..2^k (calibrated offsets)", type=int, exclusive="offset")
    out_fmt: Format | str | None = _option(None, "product format (default: the operand format)")
    overflow: str = _option("ieee", "what an overflow gives: inf/NaN (ieee) or max finite", choices=OVERFLOW_MODES)
    latency: int = 0
    name: str | None = None

    mul = "lmul"                      # what multiplies (a class constant, not a field)

    def __post_init__(self):
        f = _unit_format(self.fmt)
        k = f.man_bits if self.k is None else check_int("k", self.k, 1, f.man_bits)
        g = f if self.out_fmt is None else get_format(self.out_fmt)
        if g.man_bits < k:
            raise ValueError(f"product format {g.name} has {g.man_bits} mantissa bits, fewer than k = {k}")
        if self.offset_exp is not None and self.offset is not None:
            raise ValueError("give either offset_exp or offset, not both")
        if self.offset is not None:
            offset_exp = None
            c = check_int("offset", self.offset, 0, 1 << k)
        else:
            offset_exp = default_offset_exp(k) if self.offset_exp is None else \
                check_int("offset_exp", self.offset_exp, 0, k)
            c = 1 << (k - offset_exp)
        _check_choice("overflow", self.overflow, OVERFLOW_MODES)
        latency = check_int("latency", self.latency, 0, MAX_LATENCY)
        _set(self, fmt=f, k=k, out_fmt=g, offset=c, offset_exp=offset_exp, latency=latency,
             name=_unit_name(f"lmul_{f.name}_k{k}_c{c}", f, g, self.overflow, latency) if self.name is None
             else check_name(self.name))

    @property
    def bias_offset(self) -> int:
        """The constant the adder injects: (B_G - 2 B_F) * 2^k + c (SPEC §2 step 3)."""
        return ((self.out_fmt.bias - 2 * self.fmt.bias) << self.k) + self.offset


@dataclass(frozen=True)
class FPMulConfig(_Serialisable):
    """An exact floating-point multiplier, rounded once to nearest even (SPEC §3)."""
    fmt: Format | str = _option(None, "operand format: e4m3, e5m2, bf16, fp16, fp32 or eXmY", required=True)
    out_fmt: Format | str | None = _option(None, "product format (default: the operand format)")
    subnormals: str = _option("full", "subnormal inputs and outputs kept (full) or flushed to zero (ftz)",
                              choices=SUBNORMAL_MODES)
    overflow: str = _option("ieee", "what an overflow gives: inf/NaN (ieee) or max finite", choices=OVERFLOW_MODES)
    latency: int = 0
    name: str | None = None

    mul = "fpmul"                     # what multiplies (a class constant, not a field)

    def __post_init__(self):
        f = _unit_format(self.fmt)
        g = f if self.out_fmt is None else get_format(self.out_fmt)
        _check_choice("subnormals", self.subnormals, SUBNORMAL_MODES)
        _check_choice("overflow", self.overflow, OVERFLOW_MODES)
        latency = check_int("latency", self.latency, 0, MAX_LATENCY)
        _set(self, fmt=f, out_fmt=g, latency=latency,
             name=_unit_name(f"fpmul_{f.name}_{self.subnormals}", f, g, self.overflow, latency)
             if self.name is None else check_name(self.name))


def _array_stem(cfg) -> str:
    """What a core's or PE's default module name says after its prefix: format, multiplier, accumulation."""
    mul = f"lmul_k{cfg.k}_c{cfg.offset}" if cfg.mul == "lmul" else f"fpmul_{cfg.subnormals}"
    return f"{cfg.fmt.name}_{mul}_{cfg.acc}_d{cfg.depth}"


@dataclass(frozen=True)
class CoreConfig(_Serialisable):
    """An RxC output-stationary tensor core (SPEC §4, §5)."""
    rows: int
    cols: int
    mul: str
    fmt: Format | str
    acc: str
    depth: int
    k: int | None = None
    offset_exp: int | None = None
    offset: int | None = None
    subnormals: str = "full"
    name: str | None = None

    interface = "stream"              # the ports (a class constant, not a field): SPEC §5's streams

    def __post_init__(self):
        _set(self, rows=check_int("rows", self.rows, 1, 32), cols=check_int("cols", self.cols, 1, 32))
        f = get_format(self.fmt)
        _check_choice("acc", self.acc, ("exact", "fp32"))
        _set(self, depth=check_int("depth", self.depth, 1, 65536))
        unit = core_unit(self.mul, f, k=self.k, offset_exp=self.offset_exp, offset=self.offset,
                         subnormals=self.subnormals)
        if self.mul == "lmul":
            _set(self, k=unit.k, offset=unit.offset, offset_exp=unit.offset_exp)
        _set(self, fmt=f)
        object.__setattr__(self, "_unit", unit)
        if self.acc == "exact":
            check_exact_accumulator(unit, self.depth)
        if self.name is None:
            _set(self, name=f"core_{self.rows}x{self.cols}_{_array_stem(self)}")
        else:
            check_name(self.name)

    @property
    def unit(self) -> LMulConfig | FPMulConfig:
        """The multiplier inside each processing element, producing SPEC §4's product format."""
        return self._unit

    @property
    def product_fmt(self) -> Format:
        return self.unit.out_fmt

    @property
    def acc_width(self) -> int:
        return exact_accumulator_width(self.unit, self.depth)

    # -- derived timing and widths: the hardware is built to these, the testbenches check them --

    @property
    def result_width(self) -> int:
        """Bits of a PE's finished result: the Kulisch sum and its flags, or an fp32 word."""
        return self.acc_width + len(SPECIAL_FLAGS) if self.acc == "exact" else 32

    @property
    def readout_stages(self) -> int:
        """Registers between a column's drain chain and its deskew: the Kulisch readout has five."""
        return KULISCH_READOUT_STAGES if self.acc == "exact" else 1

    @property
    def fifo_depth(self) -> int:
        """Output rows the core can hold: enough that tiles of K >= R beats never wait for credits
        while ``o`` is always ready (a tile's rows are reserved from its last beat until they leave,
        about 2R + C cycles); the least that keeps K = R tiles bubble-free."""
        return 2 * self.rows + self.cols + 4 + self.readout_stages

    def latency(self, depth: int) -> int:
        """Cycles from a tile's first input beat (the edge that takes it) to its first output row
        (the first cycle ``o.valid`` is high for it), with no stalls: input register, K beats,
        the skew and the PEs' three stages down to the bottom row, drain load, readout registers (five
        for the Kulisch readout, one for fp32), deskew and the FIFO's two-cycle pass-through."""
        return depth + self.rows + self.cols + 4 + self.readout_stages

    @property
    def pe(self) -> PEConfig:
        """One processing element of this core."""
        options = {"k": self.k, "offset": self.offset} if self.mul == "lmul" else {"subnormals": self.subnormals}
        return PEConfig(self.mul, self.fmt, self.acc, self.depth, **options)


@dataclass(frozen=True)
class AxisCoreConfig(CoreConfig):
    """The same tensor core behind AXI4-Stream ports (docs/axis.md): a class of its own, so that the
    registry gives it its own component and testbench, and its default name (``..._axis``) differs
    from the stream core's."""

    interface = "axis"

    def __post_init__(self):
        derived = self.name is None
        super().__post_init__()
        if derived:
            _set(self, name=check_name(f"{self.name}_axis"))


#: The core's port interfaces (``lmul-hw generate core --interface``), each its configuration class.
INTERFACES = {"stream": CoreConfig, "axis": AxisCoreConfig}


@dataclass(frozen=True)
class PEConfig(_Serialisable):
    """One processing element of a tensor core (SPEC §4): the core's options without its size."""
    mul: str
    fmt: Format | str
    acc: str
    depth: int
    k: int | None = None
    offset_exp: int | None = None
    offset: int | None = None
    subnormals: str = "full"
    name: str | None = None

    def __post_init__(self):
        core = CoreConfig(1, 1, self.mul, self.fmt, self.acc, self.depth, k=self.k, offset_exp=self.offset_exp,
                          offset=self.offset, subnormals=self.subnormals)
        _set(self, fmt=core.fmt, k=core.k, offset=core.offset, offset_exp=core.offset_exp)
        object.__setattr__(self, "_core", core)
        if self.name is None:
            _set(self, name=f"pe_{_array_stem(self)}")
        check_name(self.name)

    unit = property(lambda self: self._core.unit, doc="The multiplier inside the PE.")
    product_fmt = property(lambda self: self._core.product_fmt)
    acc_width = property(lambda self: self._core.acc_width)
    result_width = property(lambda self: self._core.result_width)


#: The flags an exact accumulator keeps beside its sum (SPEC §4).
SPECIAL_FLAGS = ("nan", "pos_inf", "neg_inf")
#: Register stages of the Kulisch readout (``lmul_hw.hw.pe.kulisch_to_fp32``): the magnitude, the
#: leading nibble, the nibble shift, the bit shift, then rounding.
KULISCH_READOUT_STAGES = 5


def core_unit(mul: str, fmt, *, k=None, offset_exp=None, offset=None, subnormals="full"):
    """The multiplier of a tensor-core PE: the unit producing SPEC §4's exact product format."""
    _check_choice("mul", mul, ("lmul", "fpmul"))
    f = get_format(fmt)
    _check_choice("core format", f.name, ARRAY_FORMATS)
    if mul == "fpmul":
        if k is not None or offset is not None or offset_exp is not None:
            raise ValueError("k and offsets are L-Mul options; the fpmul core takes subnormals")
        _check_choice("subnormals", subnormals, SUBNORMAL_MODES)
        return FPMulConfig(f, out_fmt=product_format(f, "fpmul"), subnormals=subnormals)
    if subnormals != "full":
        raise ValueError("subnormals is an fpmul option; L-Mul flushes subnormal inputs to zero")
    kk = f.man_bits if k is None else check_int("k", k, 1, f.man_bits)
    return LMulConfig(f, k=kk, offset_exp=offset_exp, offset=offset, out_fmt=product_format(f, "lmul", kk))


def exact_accumulator_width(unit, depth: int) -> int:
    if unit.mul == "lmul":
        return accumulator_width(unit.fmt, "lmul", depth, k=unit.k, offset=unit.offset)
    return accumulator_width(unit.fmt, "fpmul", depth)


def check_exact_accumulator(unit, depth: int) -> None:
    width = exact_accumulator_width(unit, depth)
    if width > MAX_ACC_WIDTH:
        raise ValueError(
            f"exact accumulation of {unit.fmt.name} {unit.mul} products needs a {width}-bit accumulator "
            f"(over {MAX_ACC_WIDTH}); use fp32 accumulation")


def check_name(name, what: str = "module name", *, dollar: bool = False) -> str:
    """``name`` if it is a plain Verilog identifier (letters, digits, ``_``, not starting with a digit;
    with ``dollar`` also ``$`` after the first character, as Verilog allows) of at most
    MAX_NAME_LENGTH characters; ValueError otherwise.  Every module name that reaches Verilog text,
    a yosys script or a file name passes here."""
    pattern = r"[A-Za-z_][A-Za-z0-9_$]*" if dollar else r"[A-Za-z_][A-Za-z0-9_]*"
    if not isinstance(name, str) or not re.fullmatch(pattern, name, flags=re.ASCII):
        shown = name if not isinstance(name, str) or len(name) <= 60 else name[:60] + "..."
        raise ValueError(f"{what} {shown!r} is not a Verilog identifier (letters, digits and _"
                         f"{', $' if dollar else ''}; not starting with a digit)")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} {name[:40]}... is {len(name)} characters long; at most {MAX_NAME_LENGTH}")
    return name



# -- the registry: what each configuration type walks through -------------------------------------

@dataclass(frozen=True)
class Kind:
    """Where each stage finds what belongs to one configuration type.  Names are ``module:attribute``
    strings, imported on use, so this floor imports neither the hardware nor the model.

    ``component``: the Amaranth component built from the config; ``model``: the bit-exact reference
    (units: ``f(a, b, cfg)`` on bit-pattern arrays; cores: ``f(cfg, A, B)`` on one tile);
    ``testbench``: the cocotb module in ``sim/``; ``role``: "unit" (a two-operand multiplier, a, b -> p),
    "pe" or "core"."""
    config: type
    label: str
    role: str
    component: str
    model: str | None
    testbench: str | None

    def load(self, what: str):
        """The object named by ``component``, ``model`` or ``testbench``."""
        target = getattr(self, what)
        if target is None:
            raise ValueError(f"{self.config.__name__} has no {what}")
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr) if attr else importlib.import_module(module)


KINDS = {kind.config: kind for kind in (
    Kind(LMulConfig, "an L-Mul unit (SPEC §2)", "unit", "lmul_hw.hw.lmul:LMul", "lmul_hw.model.lmul:lmul_bits", "test_lmul"),
    Kind(FPMulConfig, "an exact multiplier, RNE (SPEC §3)", "unit", "lmul_hw.hw.fpmul:FPMul", "lmul_hw.model.fpmul:fpmul_bits",
         "test_fpmul"),
    Kind(PEConfig, "a processing element of a tensor core", "pe", "lmul_hw.hw.pe:ProcessingElement", None, None),
    Kind(CoreConfig, "an RxC systolic tensor core (SPEC §4, §5)", "core", "lmul_hw.hw.core:TensorCore", "lmul_hw.tiles:model_tile", "test_core"),
    Kind(AxisCoreConfig, "an RxC systolic tensor core with AXI4-Stream ports (docs/axis.md)", "core",
         "lmul_hw.hw.axis:AxisTensorCore", "lmul_hw.tiles:model_tile", "test_axis"),
)}
_TYPES = {cls.__name__: cls for cls in KINDS}


def kind_of(cfg, role: str | None = None) -> Kind:
    """The registry entry of a configuration; ValueError if it has none (or, with ``role``, another role)."""
    kind = KINDS.get(type(cfg))
    if kind is None or (role is not None and kind.role != role):
        raise ValueError(f"not a {role or ''} configuration: {cfg!r}".replace("  ", " "))
    return kind


def config_from_json(text: str):
    """Inverse of ``to_json``: the testbenches receive their configuration this way."""
    d = json.loads(text)
    cls = _TYPES[d.pop("type")]
    return cls(**d)
