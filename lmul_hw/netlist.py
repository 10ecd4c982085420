"""Gate-level simulation of yosys JSON netlists, bit-parallel in numpy.

A netlist from the generic CMOS flow (``lmul_hw.synthesis.synthesize_cmos``: one flattened module of
yosys internal gate cells ``$_NOT_``, ``$_NAND_``, ``$_NOR_``, ... and ``$_DFF_P_`` flip-flops) is
loaded, levelised (flip-flops cut every cycle) and evaluated with every net held as packed 64-bit
words: bit ``j`` of word ``w`` is vector (or simulation lane) ``64*w + j``.  A gate is then one numpy
operation on whole words, and the gates of one level and one type are evaluated together.

Two ways to use it:

* ``Netlist.load(path).evaluate({"a": a, "b": b})`` evaluates a combinational netlist on many input
  vectors at once and returns ``{"p": p}``; values are integer numpy arrays of equal length (uint64
  for ports up to 64 bits wide, Python ints in object arrays above).  This is the simplest check of
  a gate netlist against a model: ``evaluate`` equals ``lmul_bits`` on all 65,536 e4m3 pairs.
* ``Simulator(netlist, lanes)`` runs a clocked design cycle by cycle on ``lanes`` independent
  streams at once: ``set`` inputs, ``settle`` the logic, ``get`` outputs, ``tick`` the clock (every
  flip-flop samples its D).  While counting is on, it counts the toggles of every net between one
  settled cycle and the next (zero-delay model), or, with ``glitches=True``, every transition of a
  unit-delay simulation (each gate one time step), which includes glitches.

Constant bits ``"0"``, ``"1"`` are nets 0 and 1; ``"x"``/``"z"`` and undriven nets read as 0.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Netlist", "Simulator", "GATES", "FLIP_FLOPS", "CMOS_TRANSISTORS", "pack", "unpack"]

_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def _not(a, out):
    return np.invert(a, out=out)


def _and(a, b, out):
    return np.bitwise_and(a, b, out=out)


def _or(a, b, out):
    return np.bitwise_or(a, b, out=out)


def _xor(a, b, out):
    return np.bitwise_xor(a, b, out=out)


def _inv(out):
    return np.invert(out, out=out)


def _nand(a, b, out):
    return _inv(_and(a, b, out))


def _nor(a, b, out):
    return _inv(_or(a, b, out))


def _xnor(a, b, out):
    return _inv(_xor(a, b, out))


def _andnot(a, b, out):
    return _and(a, np.invert(b), out)


def _ornot(a, b, out):
    return _or(a, np.invert(b), out)


def _mux(a, b, s, out):          # s ? b : a
    return _xor(a, _and(s, a ^ b, out), out)


def _nmux(a, b, s, out):
    return _inv(_mux(a, b, s, out))


def _aoi3(a, b, c, out):
    return _inv(_or(_and(a, b, out), c, out))


def _oai3(a, b, c, out):
    return _inv(_and(_or(a, b, out), c, out))


def _aoi4(a, b, c, d, out):
    return _inv(_or(_and(a, b, out), c & d, out))


def _oai4(a, b, c, d, out):
    return _inv(_and(_or(a, b, out), c | d, out))


def _buf(a, out):
    out[...] = a
    return out


#: Combinational yosys gate cells: type -> (input pins in order, function on packed words).
GATES = {
    "$_BUF_": (("A",), _buf),
    "$_NOT_": (("A",), _not),
    "$_AND_": (("A", "B"), _and),
    "$_NAND_": (("A", "B"), _nand),
    "$_OR_": (("A", "B"), _or),
    "$_NOR_": (("A", "B"), _nor),
    "$_XOR_": (("A", "B"), _xor),
    "$_XNOR_": (("A", "B"), _xnor),
    "$_ANDNOT_": (("A", "B"), _andnot),
    "$_ORNOT_": (("A", "B"), _ornot),
    "$_MUX_": (("A", "B", "S"), _mux),
    "$_NMUX_": (("A", "B", "S"), _nmux),
    "$_AOI3_": (("A", "B", "C"), _aoi3),
    "$_OAI3_": (("A", "B", "C"), _oai3),
    "$_AOI4_": (("A", "B", "C", "D"), _aoi4),
    "$_OAI4_": (("A", "B", "C", "D"), _oai4),
}
#: Flip-flops that the simulator clocks (all of one design must share one clock net and edge).
FLIP_FLOPS = ("$_DFF_P_", "$_DFF_N_")

#: Cells without logic that ``flatten`` may leave behind (hierarchy annotations).
IGNORED_CELLS = ("$scopeinfo",)

#: Transistors per cell: yosys ``stat -tech cmos`` (kernel/cost.h) for the gates; a flip-flop is
#: counted at 24 as in ``lmul_hw.synthesis.DFF_TRANSISTORS``.
CMOS_TRANSISTORS = {"$_BUF_": 1, "$_NOT_": 2, "$_AND_": 6, "$_NAND_": 4, "$_OR_": 6, "$_NOR_": 4,
                    "$_ANDNOT_": 6, "$_ORNOT_": 6, "$_XOR_": 12, "$_XNOR_": 12, "$_AOI3_": 6, "$_OAI3_": 6,
                    "$_AOI4_": 8, "$_OAI4_": 8, "$_MUX_": 12, "$_NMUX_": 10, "$_DFF_P_": 24, "$_DFF_N_": 24}


def words_for(lanes: int) -> int:
    return max(1, -(-lanes // 64))


def pack(bits: np.ndarray) -> np.ndarray:
    """Bool/0-1 array (nbits, lanes) -> packed words (nbits, ceil(lanes/64)) uint64, lane j in bit j%64
    of word j//64; padding lanes are 0."""
    bits = np.asarray(bits, dtype=np.uint8)
    nbits, lanes = bits.shape
    nwords = words_for(lanes)
    padded = np.zeros((nbits, nwords * 64), dtype=np.uint8)
    padded[:, :lanes] = bits
    return np.ascontiguousarray(np.packbits(padded, axis=1, bitorder="little")).view("<u8").astype(np.uint64)


def unpack(words: np.ndarray, lanes: int) -> np.ndarray:
    """Packed words (nbits, nwords) -> bool array (nbits, lanes)."""
    words = np.ascontiguousarray(words, dtype="<u8")
    return np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")[:, :lanes].astype(bool)


def ints_to_bits(values, width: int, lanes: int) -> np.ndarray:
    """Integers (a scalar or ``lanes`` of them) -> bool array (width, lanes), LSB first."""
    if np.ndim(values) == 0:
        values = [values] * lanes
    if width <= 64:
        v = np.asarray(values)
        if v.dtype == object or v.dtype.kind not in "iu":
            v = np.array([int(x) & ((1 << width) - 1) for x in np.ravel(v)], dtype=np.uint64)
        v = v.astype(np.uint64).ravel()
        if v.size != lanes:
            raise ValueError(f"expected {lanes} values, got {v.size}")
        return ((v[None, :] >> np.arange(width, dtype=np.uint64)[:, None]) & np.uint64(1)).astype(bool)
    values = [int(x) for x in np.ravel(np.asarray(values, dtype=object))]
    if len(values) != lanes:
        raise ValueError(f"expected {lanes} values, got {len(values)}")
    nbytes = -(-width // 8)
    raw = np.frombuffer(b"".join((v & ((1 << width) - 1)).to_bytes(nbytes, "little") for v in values),
                        dtype=np.uint8).reshape(lanes, nbytes)
    return np.unpackbits(raw, axis=1, bitorder="little")[:, :width].T.astype(bool)


def bits_to_ints(bits: np.ndarray) -> np.ndarray:
    """Bool array (width, lanes) -> uint64 values (width <= 64) or Python ints in an object array."""
    width, lanes = bits.shape
    if width <= 64:
        out = np.zeros(lanes, dtype=np.uint64)
        for i in range(width):
            out |= bits[i].astype(np.uint64) << np.uint64(i)
        return out
    raw = np.packbits(bits.T, axis=1, bitorder="little")
    out = np.empty(lanes, dtype=object)
    for j in range(lanes):
        out[j] = int.from_bytes(raw[j].tobytes(), "little")
    return out


@dataclass(frozen=True)
class _Group:
    """Gates of one type whose outputs are the contiguous nets [start, stop)."""
    kind: str
    start: int
    stop: int
    inputs: tuple          # one index array per input pin


class Netlist:
    """A levelised gate netlist (see the module docstring).

    Nets are numbered 0 (constant 0), 1 (constant 1), then the primary input bits, the flip-flop
    outputs and the gate outputs, the last grouped by (level, cell type) so that each group writes a
    contiguous slice.  ``inputs``/``outputs`` map port names to lists of net numbers, LSB first, and
    ``names`` does the same for the design's named nets (its registers and wires that kept a name)."""

    def __init__(self, module: dict, name: str = "top"):
        self.name = name
        ports = module.get("ports", {})
        cells = module.get("cells", {})
        self.inputs: dict[str, list[int]] = {}
        self.outputs: dict[str, list[int]] = {}
        ids: dict[object, int] = {"0": 0, "1": 1}

        def net(bit) -> int:
            if isinstance(bit, str):
                return 1 if bit == "1" else 0           # "0", "x", "z"
            return ids.setdefault(bit, len(ids))

        for pname, port in ports.items():
            if port.get("direction") == "input":
                self.inputs[pname] = [net(b) for b in port["bits"]]
        for pname, port in ports.items():
            if port.get("direction") == "inout":
                raise ValueError(f"netlist {name}: inout port {pname} is not supported")
        input_nets = {n for bits in self.inputs.values() for n in bits}

        gates, ffs = [], []
        driver: dict[int, int] = {}
        self.cell_counts: dict[str, int] = defaultdict(int)
        for cname, cell in cells.items():
            kind = cell["type"]
            if kind in IGNORED_CELLS:
                continue
            conn = cell["connections"]
            self.cell_counts[kind] += 1
            if kind in FLIP_FLOPS:
                q = net(conn["Q"][0])
                ffs.append((kind, net(conn["C"][0]), net(conn["D"][0]), q))
                out = q
            elif kind in GATES:
                pins, _ = GATES[kind]
                out = net(conn["Y"][0])
                gates.append((kind, tuple(net(conn[p][0]) for p in pins), out))
            else:
                raise ValueError(f"netlist {name}: cell {cname} of type {kind} cannot be simulated "
                                 f"(supported: {', '.join(list(GATES) + list(FLIP_FLOPS))})")
            if out < 2 or out in input_nets or out in driver:
                raise ValueError(f"netlist {name}: net driven twice (cell {cname})")
            driver[out] = len(driver)
        self.cell_counts = dict(self.cell_counts)
        for pname, port in ports.items():
            if port.get("direction") == "output":
                self.outputs[pname] = [net(b) for b in port["bits"]]

        # the clock: one net, a primary input, drives every flip-flop
        self.clock: str | None = None
        if ffs:
            edges = {k for k, *_ in ffs}
            clocks = {c for _, c, _, _ in ffs}
            if len(edges) > 1 or len(clocks) > 1:
                raise ValueError(f"netlist {name}: flip-flops must share one clock and one edge")
            clock_net = clocks.pop()
            owners = [p for p, bits in self.inputs.items() if clock_net in bits]
            if not owners or len(self.inputs[owners[0]]) != 1:
                raise ValueError(f"netlist {name}: flip-flops are clocked by an internal or multi-bit net; "
                                 "only a 1-bit primary input clock is supported")
            self.clock = owners[0]

        # levelise: Kahn's algorithm over the gates; sources are constants, inputs and flip-flop outputs
        ff_outputs = {q for *_, q in ffs}
        level = {n: 0 for n in range(len(ids)) if n not in driver or n in ff_outputs}
        readers = defaultdict(list)
        pending = []
        for gi, (_, ins, _) in enumerate(gates):
            missing = 0
            for n in set(ins):
                if n in level:
                    continue
                missing += 1
                readers[n].append(gi)
            pending.append(missing)
        ready = [gi for gi, m in enumerate(pending) if m == 0]
        gate_level = [0] * len(gates)
        order = []
        while ready:
            gi = ready.pop()
            kind, ins, out = gates[gi]
            gate_level[gi] = 1 + max(level[n] for n in ins)
            level[out] = gate_level[gi]
            order.append(gi)
            for r in readers.pop(out, ()):
                pending[r] -= 1
                if pending[r] == 0:
                    ready.append(r)
        if len(order) != len(gates):
            raise ValueError(f"netlist {name}: combinational loop through "
                             f"{len(gates) - len(order)} gates; it cannot be levelised")
        self.depth = max(gate_level, default=0)

        # renumber: constants, inputs, flip-flop outputs, gates by (level, type)
        new = {0: 0, 1: 1}
        for bits in self.inputs.values():
            for n in bits:
                new.setdefault(n, len(new))
        self.ff_q = slice(len(new), len(new) + len(ffs))
        for *_, q in ffs:
            new[q] = len(new)
        order.sort(key=lambda gi: (gate_level[gi], gates[gi][0]))
        self.gate_start = len(new)
        for gi in order:
            new[gates[gi][2]] = len(new)
        self.n_nets = len(new)

        def renum(n):      # undriven nets read as constant 0
            return new.get(n, 0)

        self.groups: list[_Group] = []
        self.levels: list[list[_Group]] = [[] for _ in range(self.depth)]
        pos = 0
        while pos < len(order):
            key = (gate_level[order[pos]], gates[order[pos]][0])
            end = pos
            while end < len(order) and (gate_level[order[end]], gates[order[end]][0]) == key:
                end += 1
            members = [gates[g] for g in order[pos:end]]
            inputs = tuple(np.array([renum(m[1][p]) for m in members], dtype=np.intp)
                           for p in range(len(members[0][1])))
            group = _Group(key[1], self.gate_start + pos, self.gate_start + end, inputs)
            self.groups.append(group)
            self.levels[key[0] - 1].append(group)
            pos = end
        self.ff_kind = [k for k, *_ in ffs]
        self.ff_d = np.array([renum(d) for _, _, d, _ in ffs], dtype=np.intp)
        self.inputs = {p: [renum(n) for n in bits] for p, bits in self.inputs.items()}
        self.outputs = {p: [renum(n) for n in bits] for p, bits in self.outputs.items()}
        # the design's own (public) net names, e.g. a register's: LSB first, constants as nets 0 and 1
        self.names: dict[str, list[int]] = {
            nname: [(1 if b == "1" else 0) if isinstance(b, str) else renum(ids.get(b, 0)) for b in entry["bits"]]
            for nname, entry in module.get("netnames", {}).items() if not entry.get("hide_name")}
        # cell type of the driver of every net (None for constants and inputs)
        self.net_kind: list[str | None] = [None] * self.n_nets
        for i, k in enumerate(self.ff_kind):
            self.net_kind[self.ff_q.start + i] = k
        for g in self.groups:
            for n in range(g.start, g.stop):
                self.net_kind[n] = g.kind
        # per-type index arrays over all gates (the unit-delay simulation evaluates all gates each step)
        by_type = defaultdict(list)
        for g in self.groups:
            by_type[g.kind].append(g)
        self.by_type = {k: (np.concatenate([np.arange(g.start, g.stop) for g in gs]),
                            tuple(np.concatenate([g.inputs[p] for g in gs]) for p in range(len(gs[0].inputs))))
                        for k, gs in by_type.items()}

    # -- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, source, top: str | None = None) -> "Netlist":
        """From a yosys ``write_json`` file (path) or its parsed dict; ``top`` picks the module
        (default: the one marked top, else the only one)."""
        if isinstance(source, dict):
            data = source
        else:
            try:
                data = json.loads(Path(source).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"cannot read netlist {source}: {exc}") from None
        modules = data.get("modules", {})
        if top is None:
            tops = [n for n, m in modules.items() if str(m.get("attributes", {}).get("top", "0")).strip("0")]
            if len(modules) == 1:
                top = next(iter(modules))
            elif len(tops) == 1:
                top = tops[0]
            else:
                raise ValueError(f"netlist has modules {sorted(modules)}; name the top one")
        if top not in modules:
            raise ValueError(f"netlist has no module {top!r} (it has {', '.join(sorted(modules))})")
        return cls(modules[top], top)

    # -- facts -----------------------------------------------------------------------------------

    @property
    def flip_flops(self) -> int:
        return self.ff_q.stop - self.ff_q.start

    @property
    def gates(self) -> int:
        return self.n_nets - self.gate_start

    @property
    def transistors(self) -> int:
        """CMOS transistors (yosys's per-gate estimate, flip-flops at 24)."""
        return sum(CMOS_TRANSISTORS[k] * n for k, n in self.cell_counts.items())

    def fan_in(self, nets) -> np.ndarray:
        """A mask over the nets: the gate outputs in the combinational fan-in cone of ``nets`` (those
        that are gate outputs included), back to the primary inputs and flip-flop outputs."""
        mask = np.zeros(self.n_nets, dtype=bool)
        mask[np.asarray(nets, dtype=np.intp)] = True
        for group in reversed(self.groups):      # by level, highest first: a gate's inputs lie below it
            chosen = mask[group.start:group.stop]
            if chosen.any():
                for pin in group.inputs:
                    mask[pin[chosen]] = True
        mask[:self.gate_start] = False
        return mask

    def data_inputs(self) -> dict[str, int]:
        """Input ports other than the clock, with their widths."""
        return {p: len(b) for p, b in self.inputs.items() if p != self.clock}

    # -- evaluation ------------------------------------------------------------------------------

    def settle(self, values: np.ndarray) -> None:
        """Evaluate every gate, level by level, in place (inputs and flip-flop outputs already set)."""
        for group in self.groups:
            ins = [values[i] for i in group.inputs]
            GATES[group.kind][1](*ins, out=values[group.start:group.stop])

    def step_unit_delay(self, values: np.ndarray) -> np.ndarray:
        """One time step of a unit-delay simulation: every gate output takes its function of the
        current values.  Returns the new array (the old one is unchanged)."""
        new = values.copy()
        for kind, (outs, ins) in self.by_type.items():
            buf = np.empty((len(outs), values.shape[1]), dtype=np.uint64)
            GATES[kind][1](*[values[i] for i in ins], out=buf)
            new[outs] = buf
        return new

    def evaluate(self, inputs: dict, *, state: dict | None = None) -> dict[str, np.ndarray]:
        """Evaluate the netlist's logic on N input vectors at once.

        ``inputs`` maps every input port (except a clock) to N integers (numpy array or list; a
        scalar is broadcast); the result maps every output port to N integers, uint64 up to 64 bits
        (Python ints in an object array above).  A netlist with flip-flops takes their outputs from
        ``state`` (flip-flop index -> N bits, default all 0); use ``Simulator`` to clock it."""
        lengths = {np.size(v) for v in inputs.values() if np.ndim(v) > 0}
        if len(lengths) > 1:
            raise ValueError(f"inputs have different lengths {sorted(lengths)}")
        lanes = lengths.pop() if lengths else 1
        sim = Simulator(self, lanes)
        sim.set(inputs)
        if state:
            for i, bits in state.items():
                sim.values[self.ff_q.start + i] = pack(np.asarray(bits, dtype=bool)[None, :])[0]
        sim.settle()
        return {p: sim.get(p) for p in self.outputs}


class Simulator:
    """Cycle-by-cycle simulation of a netlist on ``lanes`` independent streams (bit-parallel).

    Per cycle: ``set(inputs)``; ``settle()``; read outputs with ``get``; ``tick()`` (rising edge:
    every flip-flop takes its D).  ``step(inputs)`` does all four and returns the outputs.
    Flip-flops start at 0 (pipeline registers need no reset); drive the design's reset yourself.

    Toggle counting (``start_counting()``): each ``settle`` adds, per net, the number of lanes whose
    value differs from the previous settled cycle (zero-delay), or with ``glitches=True`` every
    transition of a unit-delay simulation of the settling; each ``tick`` counts one clock edge."""

    def __init__(self, netlist: Netlist, lanes: int, *, glitches: bool = False):
        if lanes < 1:
            raise ValueError("lanes must be >= 1")
        self.netlist = netlist
        self.lanes = lanes
        self.glitches = glitches
        self.nwords = words_for(lanes)
        self.values = np.zeros((netlist.n_nets, self.nwords), dtype=np.uint64)
        self.values[1] = _ONES
        self.lane_mask = pack(np.ones((1, lanes), dtype=bool))[0]
        self._settled: np.ndarray | None = None
        self.counting = False
        self.toggles = np.zeros(netlist.n_nets, dtype=np.int64)
        self.transitions = 0        # settles counted
        self.edges = 0              # clock edges counted

    def set(self, inputs: dict) -> None:
        """Drive input ports: port -> ``lanes`` integers (or one, broadcast), or already packed words
        via ``set_words``.  Unknown ports are a ValueError; ports not given keep their value."""
        for port, value in inputs.items():
            if port not in self.netlist.inputs:
                raise ValueError(f"{self.netlist.name} has no input port {port!r} "
                                 f"(inputs: {', '.join(self.netlist.inputs)})")
            bits = self.netlist.inputs[port]
            self.values[bits] = pack(ints_to_bits(value, len(bits), self.lanes))

    def set_words(self, port: str, words: np.ndarray) -> None:
        """Drive a port from packed words (width, nwords) as made by ``pack``."""
        self.values[self.netlist.inputs[port]] = words

    def settle(self) -> None:
        nl = self.netlist
        if self.glitches and self.counting and self._settled is not None:
            # unit delay: from the previous settled state, let the new inputs/flip-flop outputs ripple
            sources = self.values[:nl.gate_start].copy()
            cur = self._settled.copy()
            cur[:nl.gate_start] = sources
            self._count(cur, self._settled)
            for _ in range(nl.depth + 1):
                nxt = nl.step_unit_delay(cur)
                changed = self._count(nxt, cur)
                cur = nxt
                if not changed:
                    break
            self.values = cur
        else:
            nl.settle(self.values)
            if self.counting and self._settled is not None:
                self._count(self.values, self._settled)
        if self.counting:
            self.transitions += 1
        self._settled = self.values.copy()

    def _count(self, new: np.ndarray, old: np.ndarray) -> bool:
        diff = (new ^ old) & self.lane_mask
        counts = np.bitwise_count(diff).sum(axis=1, dtype=np.int64)
        self.toggles += counts
        return bool(counts.any())

    def get(self, port: str) -> np.ndarray:
        """An output (or input) port's value in each lane, after ``settle``."""
        nets = self.netlist.outputs.get(port, self.netlist.inputs.get(port))
        if nets is None:
            raise ValueError(f"{self.netlist.name} has no port {port!r}")
        return bits_to_ints(unpack(self.values[nets], self.lanes))

    def get_bits(self, port: str) -> np.ndarray:
        """A port as a bool array (width, lanes)."""
        nets = self.netlist.outputs.get(port, self.netlist.inputs.get(port))
        return unpack(self.values[nets], self.lanes)

    def tick(self) -> None:
        """A rising clock edge: every flip-flop takes its D (computed by the last ``settle``)."""
        nl = self.netlist
        if nl.flip_flops:
            self.values[nl.ff_q] = self.values[nl.ff_d]
        if self.counting:
            self.edges += 1

    def step(self, inputs: dict) -> dict[str, np.ndarray]:
        """One cycle: set the inputs, settle, read every output, clock."""
        self.set(inputs)
        self.settle()
        out = {p: self.get(p) for p in self.netlist.outputs}
        self.tick()
        return out

    def start_counting(self) -> None:
        """Zero the toggle counters and count from the next ``settle`` on (its transition from the
        current settled state included)."""
        self.counting = True
        self.toggles[:] = 0
        self.transitions = 0
        self.edges = 0
