"""The RxC output-stationary systolic tensor core with stream ports (SPEC §4, §5).
Its reference is ``lmul_hw.model.matmul``; its cocotb testbench is ``sim/test_core.py``.

Data path, for a beat k of a tile (column k of A, row k of B):

    input register -> skew (row r of A and the control beat delayed r cycles, column c of B
    delayed c cycles) -> PE(r, c) sees a[r], b[c] at issue + r + c, passes a right and b down
    -> on the tile's last beat each PE parks its sum in a result register
    -> per column, when the bottom PE is done, the column's results load into a drain chain that
    shifts one row per cycle towards the top (row 0 first) -> readout (Kulisch -> fp32)
    -> deskew (column c waits C-1-c cycles) -> output FIFO -> o.

Flow control: the array never stalls.  A tile's last beat is issued only when the output FIFO has
room for all its R rows reserved (credits, returned as rows leave) and at least R cycles after
the previous last beat, so a PE's parked result is loaded into the drain chain before the next
tile's result replaces it and the chain is empty again when the next tile loads.  For tiles of
K >= R beats neither condition ever holds a beat back: tiles stream back to back.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..config import KULISCH_READOUT_STAGES, CoreConfig
from .pe import Control, ProcessingElement, kulisch_to_fp32


def input_layout(cfg: CoreConfig) -> data.StructLayout:
    return data.StructLayout({"a": cfg.rows * cfg.fmt.width, "b": cfg.cols * cfg.fmt.width, "last": 1})


def output_layout(cfg: CoreConfig) -> data.StructLayout:
    return data.StructLayout({"c": cfg.cols * 32, "last": 1})


class TensorCore(wiring.Component):
    """C = A @ B tile by tile: ``i`` takes one column of A and one row of B per beat, ``o`` gives
    one row of C (fp32 bit patterns) per beat."""

    def __init__(self, cfg: CoreConfig):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(input_layout(cfg))),
            "o": Out(stream.Signature(output_layout(cfg))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rows, cols, w = cfg.rows, cfg.cols, cfg.fmt.width

        w_en, w_data = Signal(name="w_en"), Signal(cols * 32 + 1, name="w_data")
        _output_fifo(m, cfg, w_en, w_data, self.o)
        row_out = self.o.valid & self.o.ready

        # -- input register and issue ------------------------------------------------------------
        held = Signal(input_layout(cfg), name="in_beat", reset_less=True)
        held_valid = Signal(name="in_valid")
        starts_tile = Signal(init=1, name="starts_tile")
        # cycles since the last tile's last beat, saturating at R - 1 (no counter for one row)
        since_last = Signal(range(rows), init=rows - 1, name="since_last") if rows > 1 else None
        reserved = Signal(range(cfg.fifo_depth + 1), name="rows_reserved")
        # may a last beat issue (the rows reserved leave room for R more, and R cycles have passed)?
        # Kept in a register, computed one cycle ahead from the counters' next values, so that the
        # handshake and the input register's enable do not wait for the comparisons.
        may_end = Signal(init=1, name="may_end")
        held_last = Signal(name="in_last")            # a held beat that ends its tile
        issue = Signal(name="issue")
        m.d.comb += [issue.eq(held_valid & (~held_last | may_end)),
                     self.i.ready.eq(~held_last | may_end)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload), held_valid.eq(1), held_last.eq(self.i.payload.last)]
        with m.Elif(issue):
            m.d.sync += [held_valid.eq(0), held_last.eq(0)]
        ends_tile = held_last & may_end
        with m.If(issue):
            m.d.sync += starts_tile.eq(held.last)
        if since_last is not None:
            with m.If(ends_tile):
                m.d.sync += since_last.eq(0)
            with m.Elif(since_last != rows - 1):
                m.d.sync += since_last.eq(since_last + 1)
        # three constant adders on the register, chosen after them: the handshake is not in a carry chain
        m.d.sync += reserved.eq(Mux(ends_tile, Mux(row_out, reserved + (rows - 1), reserved + rows),
                                    Mux(row_out, reserved - 1, reserved)))
        # reserved' <= depth - R for each (ends_tile, row_out): compare the register with constants
        limit = cfg.fifo_depth - rows
        room = Mux(ends_tile, Mux(row_out, _at_most(reserved, limit - rows + 1), _at_most(reserved, limit - rows)),
                   Mux(row_out, _at_most(reserved, limit + 1), _at_most(reserved, limit)))
        if since_last is None:
            waited = Const(1)
        else:
            waited = ~ends_tile & (since_last >= rows - 2) if rows > 2 else ~ends_tile
        m.d.sync += may_end.eq(room & waited)

        # -- skew and the PE grid ----------------------------------------------------------------
        beat = Signal(Control, name="issued")
        m.d.comb += [beat.valid.eq(issue), beat.first.eq(starts_tile), beat.last.eq(held.last)]
        pes = [[ProcessingElement(cfg) for _ in range(cols)] for _ in range(rows)]
        for r in range(rows):
            for c in range(cols):
                pe = pes[r][c]
                m.submodules[f"pe_{r}_{c}"] = pe
                if c == 0:
                    m.d.comb += [pe.a_in.eq(_delay(m, held.a[r * w:(r + 1) * w], r, f"skew_a{r}")),
                                 pe.ctl_in.eq(_delay(m, beat.as_value(), r, f"skew_ctl{r}", reset=True))]
                else:
                    m.d.comb += [pe.a_in.eq(pes[r][c - 1].a_out), pe.ctl_in.eq(pes[r][c - 1].ctl_out)]
                if r == 0:
                    m.d.comb += pe.b_in.eq(_delay(m, held.b[c * w:(c + 1) * w], c, f"skew_b{c}"))
                else:
                    m.d.comb += pe.b_in.eq(pes[r - 1][c].b_out)

        # -- drain, readout, deskew ------------------------------------------------------------
        # every column's word is deskewed; the valid and last marks are those of column 0 (the
        # other columns' are the same, so they are not built)
        words = []
        for c in range(cols):
            word, valid, last = self._drain_column(m, [pes[r][c] for r in range(rows)], c, marks=c == 0)
            words.append(_delay(m, word, cols - 1 - c, f"deskew_c{c}"))
            if c == 0:
                valid0 = _delay(m, valid, cols - 1, "deskew_v0", reset=True)
                last0 = _delay(m, last, cols - 1, "deskew_l0", reset=True)
        m.d.comb += [w_en.eq(valid0), w_data.eq(Cat(*words, last0))]
        return m

    def _drain_column(self, m: Module, column, c: int, marks: bool = True):
        """Load the column's parked results when its bottom PE is done; shift them out row 0 first;
        read each out to fp32 and register it.  With ``marks``, also the valid and last marks of
        the rows leaving (else None for both)."""
        cfg = self.cfg
        rows = cfg.rows
        values = [Signal(cfg.result_width, name=f"drain_c{c}_r{r}", reset_less=True) for r in range(rows)]
        valid = [Signal(name=f"drain_c{c}_r{r}_valid") for r in range(rows)] if marks else []
        with m.If(column[-1].done):
            for r in range(rows):
                m.d.sync += values[r].eq(column[r].result)
            m.d.sync += [v.eq(1) for v in valid]
        with m.Else():
            for r in range(rows - 1):
                m.d.sync += values[r].eq(values[r + 1])
            m.d.sync += [v.eq(n) for v, n in zip(valid, valid[1:])] + [v.eq(0) for v in valid[-1:]]
        if cfg.acc == "exact":      # the readout's first stage is registered inside kulisch_to_fp32
            word = kulisch_to_fp32(m, cfg, values[0], name=f"readout_c{c}")
        else:
            word = values[0]
        word_q = Signal(32, name=f"readout_c{c}_q", reset_less=True)
        m.d.sync += word_q.eq(word)
        if not marks:
            return word_q, None, None
        # the last row is the one whose successor in the chain is empty
        valid_out, last_out = valid[0], (valid[0] & ~valid[1] if rows > 1 else valid[0])
        if cfg.acc == "exact":
            valid_out = _delay(m, valid_out, KULISCH_READOUT_STAGES - 1, f"readout_c{c}_v", reset=True)
            last_out = _delay(m, last_out, KULISCH_READOUT_STAGES - 1, f"readout_c{c}_l", reset=True)
        valid_q = Signal(name=f"readout_c{c}_valid")
        last_q = Signal(name=f"readout_c{c}_last")
        m.d.sync += [valid_q.eq(valid_out), last_q.eq(last_out)]
        return word_q, valid_q, last_q


def _at_most(counter: Signal, bound: int):
    """``counter <= bound``, or a constant where the counter's width decides it (no constant
    comparison in the Verilog)."""
    return Const(1) if bound >= (1 << len(counter)) - 1 else counter <= bound


def _output_fifo(m: Module, cfg: CoreConfig, w_en, w_data, o) -> None:
    """The output FIFO: a memory with a registered read (block or LUT RAM) and ``o`` behind it.

    Unlike ``amaranth.lib.fifo.SyncFIFOBuffered`` it has no fill level and never refuses a write:
    the credits of the last-beat rule keep at most ``fifo_depth`` rows in it, and the memory has
    more entries than that, so the pointers alone tell empty from full.  The write enable is then a
    register's output and the read register loads whenever ``o`` may change, so neither waits for
    a comparison (they were the core's critical paths on ECP5)."""
    depth = 1 << cfg.fifo_depth.bit_length()           # > fifo_depth
    m.submodules.fifo_storage = storage = Memory(shape=len(w_data), depth=depth, init=[])
    w_port, r_port = storage.write_port(), storage.read_port(domain="sync")
    produce = Signal(range(depth), name="produce")
    consume = Signal(range(depth), name="consume")
    take = Signal(name="fifo_take")
    m.d.comb += [w_port.addr.eq(produce), w_port.data.eq(w_data), w_port.en.eq(w_en),
                 take.eq((produce != consume) & (~o.valid | o.ready)),
                 r_port.addr.eq(consume), r_port.en.eq(~o.valid | o.ready), o.payload.eq(r_port.data)]
    with m.If(w_en):
        m.d.sync += produce.eq(produce + 1)
    with m.If(take):
        m.d.sync += [consume.eq(consume + 1), o.valid.eq(1)]
    with m.Elif(o.ready):
        m.d.sync += o.valid.eq(0)


def _delay(m: Module, value, cycles: int, name: str, reset: bool = False):
    """``value`` delayed by ``cycles`` registers (control bits reset, data not)."""
    for i in range(cycles):
        reg = Signal(len(value), name=f"{name}_{i}", reset_less=not reset)
        m.d.sync += reg.eq(value)
        value = reg
    return value
