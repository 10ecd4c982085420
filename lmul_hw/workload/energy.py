"""Energy per inference from the operand streams the core saw (issue 10 §3; docs/workload-energy.md).

Each product kind's sampled PE streams (``streams.ProductSample``) are replayed through the gate-level
netlist of the configuration's processing element with ``lmul_hw.energy.clocked_energy`` (switching
activity, 45 nm scale: the flow report's units) in the core's order: stream after stream, k = 0..K-1,
one valid beat per cycle, ``first`` and ``last`` on each stream's ends.  The kind's beats are cut
into equal segments, one per simulation lane, and each lane first replays the stream before the one
its segment begins in and that one from its start, so that every counted beat finds the PE
(accumulator and result register included) in the state the core would leave it in.  The same pairs
in the same order go through the multiplier alone for the energy per multiply.  The run's energy is
the sum over kinds of the kind's MACs x its pJ per MAC."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..energy import RESET_CYCLES, SETTLE_CYCLES, EnergyResult, clocked_energy, combinational_energy, load_netlist
from ..netlist import pack, words_for
from .streams import PRODUCT_KINDS, ProductSample

__all__ = ["KindEnergy", "InferenceEnergy", "inference_energy", "replay_pe", "replay_multiplier"]

#: Simulation lanes of a replay: up to a few thousand the cost of a cycle hardly grows with them
#: (1.9 ms at 1,024 lanes against 1.5 ms at 64 for the bf16 L-Mul PE), so a sample of up to this many
#: streams per kind costs one pass of its longest K.
LANES = 1024
#: Cycles of stimulus packed at once (bounds the memory of a long replay).
_BLOCK = 256


@dataclass(frozen=True)
class KindEnergy:
    """One product kind: its MACs in the run and what its sampled streams cost."""
    kind: str
    macs: int                  #: multiply-accumulates of this kind in the run
    streams: int               #: streams replayed
    sampled_macs: int          #: beats replayed (the sampled streams' K added up)
    pj_per_multiply: float     #: the PE's multiplier alone, on the same pairs in the same order
    pj_per_mac: float          #: the whole PE (multiplier, registers, accumulator, clock load)
    clock_pj_per_mac: float    #: of pj_per_mac: the flip-flops' clock load

    @property
    def pj(self) -> float:
        """The kind's energy in the run: MACs x pJ per MAC."""
        return self.macs * self.pj_per_mac


@dataclass(frozen=True)
class InferenceEnergy:
    """Energy of a run's core products under one PE: per kind and in total (pJ, 45 nm scale)."""
    pe: str                    #: the PE's module name
    multiplier: str            #: its multiplier's module name
    kinds: tuple               #: KindEnergy per kind, in PRODUCT_KINDS order
    lanes: int
    seconds: float

    @property
    def macs(self) -> int:
        return sum(k.macs for k in self.kinds)

    @property
    def pj_total(self) -> float:
        """All core products of the run the samples come from (every text): the sum over kinds of
        MACs x pJ per MAC.  Per inference (one text) is this over the run's texts (``run.energy_figures``)."""
        return sum(k.pj for k in self.kinds)

    @property
    def pj_per_mac(self) -> float:
        return self.pj_total / self.macs

    @property
    def pj_per_multiply(self) -> float:
        """The multiplier's energy per multiply, weighted by the kinds' MACs."""
        return sum(k.macs * k.pj_per_multiply for k in self.kinds) / self.macs

    @property
    def clock_share(self) -> float:
        """The part of pj_total that is the PE's clock load (the flow has no clock gating)."""
        return sum(k.macs * k.clock_pj_per_mac for k in self.kinds) / self.pj_total

    def to_dict(self) -> dict:
        return {"pe": self.pe, "multiplier": self.multiplier, "pj_per_multiply": self.pj_per_multiply,
                "pj_per_mac": self.pj_per_mac, "pj_total": self.pj_total,
                "clock_share": self.clock_share, "macs": self.macs,
                "sampled_macs": sum(k.sampled_macs for k in self.kinds), "lanes": self.lanes,
                "seconds": round(self.seconds, 3),
                "kinds": {k.kind: {key: v for key, v in asdict(k).items() if key != "kind"} for k in self.kinds}}


_NETLISTS: dict = {}


def _netlists(pe_cfg, progress=None):
    """(PE netlist, multiplier netlist) of a PE configuration, synthesized once (the synth cache) and
    generated and loaded once per process (the Verilog alone takes Amaranth a second or two)."""
    from ..verilog import verilog_text
    if pe_cfg not in _NETLISTS:
        while len(_NETLISTS) >= 4:
            del _NETLISTS[next(iter(_NETLISTS))]
        _NETLISTS[pe_cfg] = (load_netlist(verilog_text(pe_cfg), pe_cfg.name, progress)[1],
                             load_netlist(verilog_text(pe_cfg.unit), pe_cfg.unit.name, progress)[1])
    return _NETLISTS[pe_cfg]


def inference_energy(cfg, samples, *, lanes: int = LANES, progress=None) -> InferenceEnergy:
    """Energy of the core products of a run under the PE ``cfg`` (a PEConfig, e.g. ``Numerics.pe``),
    from ``samples`` (one ProductSample per kind that ran on the core).  ValueError for no samples, a
    kind given twice, a sample without streams or MACs, operands wider than the format or a stream
    longer than the PE's depth.  ``progress(message)``, if given, hears the netlists' synthesis (cached or
    not) and loading, and how far a long replay is."""
    start = time.perf_counter()
    samples = list(samples)
    _check(cfg, samples, lanes)
    pe_nl, mul_nl = _netlists(cfg, progress)
    kinds = []
    for sample in sorted(samples, key=lambda s: PRODUCT_KINDS.index(s.kind)):
        pe = replay_pe(pe_nl, sample, lanes=lanes, progress=progress)
        mul = replay_multiplier(mul_nl, sample, progress=progress)
        kinds.append(KindEnergy(sample.kind, int(sample.macs), len(sample.lengths), int(sample.a.size),
                                mul.pj_per_op, pe.pj_per_op, pe.clock_pj_per_op))
    return InferenceEnergy(cfg.name, cfg.unit.name, tuple(kinds), lanes, time.perf_counter() - start)


def _check(cfg, samples, lanes) -> None:
    if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)) or lanes < 1:
        raise ValueError(f"lanes must be an integer >= 1, not {lanes!r}")
    if not samples:
        raise ValueError("no product samples: the configuration ran no products on the core")
    seen = set()
    for s in samples:
        if not isinstance(s, ProductSample):
            raise ValueError(f"expected ProductSample, got {type(s).__name__}")
        if s.kind in seen:
            raise ValueError(f"product kind {s.kind!r} given twice")
        seen.add(s.kind)
        if not len(s.lengths):
            raise ValueError(f"{s.kind}: the sample holds no stream")
        if s.macs < 1:
            raise ValueError(f"{s.kind}: {s.macs} MACs in the run; a sampled kind has at least one")
        if s.a.dtype.kind not in "ui" or s.b.dtype.kind not in "ui":
            raise ValueError(f"{s.kind}: operands must be integer bit patterns, not {s.a.dtype} and {s.b.dtype}")
        low, top = min(int(s.a.min()), int(s.b.min())), max(int(s.a.max()), int(s.b.max()))
        if low < 0 or top >> cfg.fmt.width:
            raise ValueError(f"{s.kind}: operand {low if low < 0 else top} is no {cfg.fmt.name} bit pattern "
                             f"({cfg.fmt.width} bits)")
        if int(s.lengths.max()) > cfg.depth:
            raise ValueError(f"{s.kind}: a stream of K = {int(s.lengths.max())} is deeper than the PE "
                             f"({cfg.depth})")


def _layout(lengths: np.ndarray, lanes: int):
    """(lanes used, beats per lane, each lane's first beat, warm-up cycles): the kind's N beats cut
    into ``used`` segments of ``per_lane`` beats; ``used`` is the most lanes, up to ``lanes`` and the
    number of streams, for which the last segment, wrapping to the sequence's start, counts at most
    N / 1000 beats twice (none when the streams are equal and fill the lanes evenly).  Each lane
    warms up from SETTLE_CYCLES beats before the start of the stream BEFORE the one its segment
    begins in: that stream's whole sum is what the PE's result register holds when the next one
    finishes (warming up from the current stream's start only left a partial sum there and read
    0.06 % low on K = 384, 0.3 % on K = 32)."""
    n = int(lengths.sum())
    used = next(u for u in range(min(lanes, len(lengths)), 0, -1) if u * -(-n // u) - n <= n // 1000)
    per_lane = -(-n // used)
    first = np.arange(used, dtype=np.int64) * per_lane
    stream_starts = np.cumsum(lengths) - lengths
    current = np.searchsorted(stream_starts, first, side="right") - 1
    back = first - stream_starts[current] + lengths[current - 1]        # current - 1 = -1: the last stream
    return used, per_lane, first, int(back.max()) + SETTLE_CYCLES


def replay_pe(netlist, sample: ProductSample, *, lanes: int = LANES, observe=None, progress=None) -> EnergyResult:
    """Energy per MAC of a PE netlist on a kind's streams, back to back in the core's order (see the
    module's docstring); pJ per MAC = the counted cycles' energy / the beats counted.  ``observe(cycle,
    sim)``, if given, reads the settled PE every cycle (its ``result`` when ``done``: the tests hold
    them against the model)."""
    width, ctl_width = len(netlist.inputs["a_in"]), len(netlist.inputs["ctl_in"])
    a, b = sample.a, sample.b                                   # gathered per block, in their own dtype
    ends = np.cumsum(sample.lengths)
    ctl = np.ones(a.size, dtype=np.uint8)                       # valid, first (bit 1), last (bit 2)
    ctl[ends - sample.lengths] |= 2
    ctl[ends - 1] |= 4
    used, per_lane, first, warmup = _layout(sample.lengths, lanes)
    total = warmup + per_lane + (RESET_CYCLES if "rst" in netlist.inputs else 0)
    block = {}

    def stimulus(t, sim):
        if t not in block:                                        # pack _BLOCK cycles at once
            block.clear()
            rel = np.arange(t, min(t + _BLOCK, total)) - (total - per_lane)
            beat = (first[None, :] + rel[:, None]) % a.size
            ports = (("a_in", a, width), ("b_in", b, width), ("ctl_in", ctl, ctl_width))
            words = {p: _pack(v[beat], w) for p, v, w in ports}
            block.update({t + i: {p: w[i] for p, w in words.items()} for i in range(len(rel))})
        for port, words in block[t].items():
            sim.set_words(port, words)

    res = clocked_energy(netlist, stimulus, per_lane, lanes=used, warmup=warmup, observe=observe,
                         dist=f"MiniLM {sample.kind}", progress=progress)
    return replace(res, operation="MAC")


def _pack(values: np.ndarray, width: int) -> np.ndarray:
    """(cycles, lanes) integers -> (cycles, width, words) packed bits, as Simulator.set_words takes them."""
    cycles, lanes = values.shape
    bits = (values.astype(np.uint64)[:, None, :] >> np.arange(width, dtype=np.uint64)[None, :, None]) & np.uint64(1)
    return pack(bits.reshape(cycles * width, lanes)).reshape(cycles, width, words_for(lanes))


def replay_multiplier(netlist, sample: ProductSample, *, progress=None) -> EnergyResult:
    """Energy per multiply of the (combinational) multiplier netlist on a kind's operand pairs in the
    same order: every transition from one pair to the next, the last back to the first."""
    pairs = {"a": np.append(sample.a, sample.a[:1]), "b": np.append(sample.b, sample.b[:1])}
    return combinational_energy(netlist, pairs, dist=f"MiniLM {sample.kind}", progress=progress)
