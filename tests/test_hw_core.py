"""Layer 2: the tensor core in Amaranth's simulator against lmul_hw.model.matmul, with a protocol
monitor on both streams, random gaps and back-pressure, cycle counts and reset mid-tile; fp32
accumulation for every operand format and multiplier variant, on edge values and wide operands."""

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from lmul_hw.config import CoreConfig
from lmul_hw.hw.core import TensorCore
from lmul_hw.simulate import CoreMismatch
from lmul_hw.tiles import beat_row, edge_tiles, model_tile, random_operands, tile_beats


class CoreRun:
    """Drive tiles through a core; record output rows, cycle stamps and protocol violations."""

    def __init__(self, cfg, tiles, *, seed=0, gaps=0.0, stall=0.0, reset_after=None):
        self.cfg, self.tiles = cfg, tiles
        self.rng = np.random.default_rng(seed)
        self.gaps, self.stall, self.reset_after = gaps, stall, reset_after
        self.rows, self.violations = [], []
        self.in_cycles, self.out_cycles, self.ready_low = [], [], 0

    def run(self, expected_rows):
        dut = TensorCore(self.cfg)
        top = Module()
        top.domains.sync = domain = ClockDomain("sync")
        top.submodules.core = dut
        beats = [b for A, B in self.tiles for b in tile_beats(self.cfg, A, B)]
        if self.reset_after is not None:      # the rest of the interrupted tile is never sent
            first_kept = len(tile_beats(self.cfg, *self.tiles[0]))
            beats = beats[:self.reset_after] + beats[first_kept:]
        cycle = [0]

        async def producer(ctx):
            for n, beat in enumerate(beats):
                if n == self.reset_after:
                    ctx.set(dut.i.valid, 0)
                    ctx.set(domain.rst, 1)
                    await ctx.tick()
                    ctx.set(domain.rst, 0)
                while self.gaps and self.rng.random() < self.gaps:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload.as_value(), beat)
                while True:
                    ready = ctx.get(dut.i.ready)
                    self.ready_low += not ready
                    await ctx.tick()
                    if ready:
                        self.in_cycles.append(cycle[0])
                        break
            ctx.set(dut.i.valid, 0)

        async def consumer(ctx):
            held = None
            while len(self.rows) < expected_rows:
                ready = not (self.stall and self.rng.random() < self.stall)
                ctx.set(dut.o.ready, int(ready))
                valid, payload = ctx.get(dut.o.valid), ctx.get(dut.o.payload.as_value())
                if held is not None and (not valid or payload != held):
                    self.violations.append(f"cycle {cycle[0]}: o dropped or changed a beat before it moved")
                # no combinational path from inputs: o.valid ignores o.ready, i.ready ignores i.valid/payload
                ctx.set(dut.o.ready, int(not ready))
                ready_in = ctx.get(dut.i.ready)
                if ctx.get(dut.o.valid) != valid:
                    self.violations.append(f"cycle {cycle[0]}: o.valid depends on o.ready")
                ctx.set(dut.o.ready, int(ready))
                if ctx.get(dut.i.ready) != ready_in:
                    self.violations.append(f"cycle {cycle[0]}: i.ready depends on o.ready")
                if valid and ready:
                    self.rows.append(beat_row(self.cfg, payload))
                    self.out_cycles.append(cycle[0])
                    held = None
                else:
                    held = payload if valid else None
                await ctx.tick()
                cycle[0] += 1
                if cycle[0] > 200_000:
                    raise AssertionError("core stopped producing rows")

        sim = Simulator(top)
        sim.add_clock(1e-6)
        sim.add_testbench(producer)
        sim.add_testbench(consumer)
        sim.run()
        return self


def check_rows(cfg, tiles, run):
    """The rows a CoreRun took, against the model: last flags, then values (a mismatch names the
    tile, its operands, and the expected and actual bits with their values)."""
    rows = run.rows
    i = 0
    for t, (A, B) in enumerate(tiles):
        expected = model_tile(cfg, A, B)
        for r in range(cfg.rows):
            got, last = rows[i]
            cycle = run.out_cycles[i]
            i += 1
            assert last == (r == cfg.rows - 1), f"tile {t} row {r}: last flag {last}"
            bad = [c for c in range(cfg.cols) if got[c] != int(expected[r, c])]
            assert not bad, "\n".join(
                CoreMismatch(cfg, t, r, c, A[r].tolist(), B[:, c].tolist(), int(expected[r, c]), got[c], cycle).describe()
                for c in bad)
    assert i == len(rows)


def make_tiles(cfg, depths, seed, dist="gaussian", special_rate=0.04):
    rng = np.random.default_rng(seed)
    return [(random_operands(cfg.fmt, (cfg.rows, k), rng, dist=dist, special_rate=special_rate),
             random_operands(cfg.fmt, (k, cfg.cols), rng, dist=dist, special_rate=special_rate)) for k in depths]


CORES = [
    CoreConfig(2, 3, "lmul", "e4m3", "exact", 16),
    CoreConfig(3, 2, "lmul", "e5m2", "fp32", 16),
    CoreConfig(1, 1, "lmul", "e4m3", "exact", 4),
    CoreConfig(1, 4, "fpmul", "e4m3", "exact", 8),
    CoreConfig(4, 1, "fpmul", "e5m2", "exact", 8, subnormals="ftz"),
    CoreConfig(2, 2, "fpmul", "fp16", "exact", 8),
    CoreConfig(2, 2, "lmul", "fp16", "exact", 8, k=6),
    CoreConfig(2, 2, "lmul", "bf16", "fp32", 8),
    CoreConfig(2, 2, "fpmul", "bf16", "fp32", 8),
    CoreConfig(3, 3, "lmul", "e4m3", "exact", 8, offset=3),
]


@pytest.mark.parametrize("cfg", CORES, ids=lambda c: c.name)
def test_core_matches_model_with_gaps_and_backpressure(cfg):
    depths = [1, cfg.depth, 2, 1, 1, 3, cfg.depth // 2]
    tiles = make_tiles(cfg, depths, seed=cfg.rows * 7 + cfg.cols, dist="heavy" if cfg.rows % 2 else "gaussian")
    run = CoreRun(cfg, tiles, seed=3, gaps=0.3, stall=0.4).run(cfg.rows * len(tiles))
    assert run.violations == []
    check_rows(cfg, tiles, run)


C = CoreConfig
#: fp32 accumulation (SPEC §4) for every operand format, fp32 operands included: L-Mul at its
#: default k and offset and at other k and offsets, the exact multiplier with full subnormals and
#: with ftz; small cores (a 1x1 one is a single PE), since the edge tiles are many.
FP32_ACC = [
    C(2, 2, "lmul", "e4m3", "fp32", 8), C(1, 3, "lmul", "e4m3", "fp32", 4, offset=3),
    C(2, 1, "lmul", "e4m3", "fp32", 4, k=1), C(2, 2, "fpmul", "e4m3", "fp32", 8),
    C(1, 2, "fpmul", "e4m3", "fp32", 4, subnormals="ftz"),
    C(2, 2, "lmul", "e5m2", "fp32", 4), C(1, 3, "lmul", "e5m2", "fp32", 6, k=1), C(2, 1, "lmul", "e5m2", "fp32", 4, offset=0),
    C(2, 2, "fpmul", "e5m2", "fp32", 8), C(3, 1, "fpmul", "e5m2", "fp32", 4, subnormals="ftz"),
    C(2, 2, "lmul", "fp16", "fp32", 8), C(1, 2, "lmul", "fp16", "fp32", 4, k=6, offset_exp=0),
    C(2, 2, "fpmul", "fp16", "fp32", 4), C(1, 3, "fpmul", "fp16", "fp32", 8, subnormals="ftz"),
    C(2, 2, "lmul", "bf16", "fp32", 4), C(1, 2, "lmul", "bf16", "fp32", 4, k=3),
    C(2, 1, "lmul", "bf16", "fp32", 6, offset=128), C(2, 2, "fpmul", "bf16", "fp32", 4),
    C(1, 3, "fpmul", "bf16", "fp32", 4, subnormals="ftz"),
    C(2, 2, "lmul", "fp32", "fp32", 8), C(1, 2, "lmul", "fp32", "fp32", 4, k=3),
    C(1, 1, "lmul", "fp32", "fp32", 4, k=10, offset=0), C(2, 2, "fpmul", "fp32", "fp32", 8),
    C(1, 1, "fpmul", "fp32", "fp32", 4), C(2, 1, "fpmul", "fp32", "fp32", 6, subnormals="ftz"),
]


@pytest.mark.parametrize("cfg", FP32_ACC, ids=lambda c: c.name)
def test_fp32_accumulation_on_edge_values_and_wide_operands(cfg):
    """Every ordered pair of edge values, sums that overflow, underflow and cancel
    (``lmul_hw.tiles.edge_tiles``), then wide and Gaussian tiles, with gaps and back-pressure."""
    seed = cfg.rows * 7 + cfg.cols + cfg.fmt.width
    tiles = (edge_tiles(cfg, np.random.default_rng(seed))
             + make_tiles(cfg, [cfg.depth, 1, 2, cfg.depth, 3, cfg.depth] * 2, seed, dist="wide", special_rate=0.1)
             + make_tiles(cfg, [cfg.depth, 1, cfg.depth // 2 + 1], seed + 1))
    run = CoreRun(cfg, tiles, seed=seed, gaps=0.2, stall=0.3).run(cfg.rows * len(tiles))
    assert run.violations == []
    check_rows(cfg, tiles, run)


def test_a_wrong_value_is_reported_with_operands_and_decoded_values():
    """check_rows names the tile, the operands and the expected and actual bits with their values."""
    cfg = C(1, 1, "fpmul", "fp32", "fp32", 2)
    A = np.array([[0x3F800000, 0x40000000]], dtype=np.uint32)       # 1, 2
    B = np.array([[0x40400000], [0x3F800000]], dtype=np.uint32)     # 3, 1
    run = CoreRun(cfg, [(A, B)])
    run.rows, run.out_cycles = [([0x40A00001], True)], [9]
    with pytest.raises(AssertionError) as info:
        check_rows(cfg, [(A, B)], run)
    text = str(info.value)
    assert "tile 0 (K=2) row 0 column 0: expected 0x40a00000 (5.0), got 0x40a00001 (5.000000476837158) [cycle 9]" in text
    assert "A row 0: [0x3f800000=1.0, 0x40000000=2.0]" in text and "B column 0: [0x40400000=3.0, 0x3f800000=1.0]" in text


def test_throughput_and_latency_4x4():
    """T = 8 tiles of K = 64 take at most T*K/0.95 + L cycles; the first row comes after exactly L."""
    cfg = CoreConfig(4, 4, "lmul", "e4m3", "exact", 64)
    tiles = make_tiles(cfg, [64] * 8, seed=11)
    run = CoreRun(cfg, tiles).run(4 * 8)
    check_rows(cfg, tiles, run)
    first_latency = run.out_cycles[0] - run.in_cycles[0]
    assert first_latency == cfg.latency(64)
    total = run.out_cycles[-1] - run.in_cycles[0] + 1
    assert total <= 8 * 64 / 0.95 + cfg.latency(64), total
    assert run.ready_low == 0


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (1, 1)])
def test_tiles_of_depth_r_stream_without_bubbles(shape):
    rows, cols = shape
    cfg = CoreConfig(rows, cols, "lmul", "e5m2", "exact", 16)
    tiles = make_tiles(cfg, [rows] * 6, seed=5)
    run = CoreRun(cfg, tiles).run(rows * 6)
    check_rows(cfg, tiles, run)
    assert run.ready_low == 0, "i.ready dropped although every tile had K >= R beats"
    assert run.in_cycles == list(range(run.in_cycles[0], run.in_cycles[0] + 6 * rows))


def test_reset_mid_tile_drops_tiles_in_flight():
    cfg = CoreConfig(2, 2, "lmul", "e4m3", "exact", 8)
    dropped = make_tiles(cfg, [8], seed=1)
    kept = make_tiles(cfg, [3, 8], seed=2)
    run = CoreRun(cfg, dropped + kept, reset_after=5).run(2 * 2)   # reset after 5 of the first tile's 8 beats
    assert run.violations == []
    check_rows(cfg, kept, run)
