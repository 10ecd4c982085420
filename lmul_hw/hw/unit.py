"""What the two multiplier units share: the ports of SPEC §5 and the pipeline around the datapath."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class Unit(wiring.Component):
    """A two-operand unit with ports ``a``, ``b`` (operand bits) and ``p`` (product bits).

    ``datapath`` describes the combinational logic once.  With ``latency`` N >= 1 the operands are
    registered (N >= 2) and the product passes N - 1 (N = 1: one) output registers, so ``p`` in
    cycle t + N belongs to the ``a``, ``b`` of cycle t.  Pipeline registers have no reset.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({"a": In(cfg.fmt.width), "b": In(cfg.fmt.width), "p": Out(cfg.out_fmt.width)})

    def datapath(self, m: Module, a, b):
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        latency = self.cfg.latency
        a, b = self.a, self.b
        if latency >= 2:
            a, b = _register(m, a, "a_q"), _register(m, b, "b_q")
        p = self.datapath(m, a, b)
        for stage in range(max(latency - 1, 1) if latency else 0):
            p = _register(m, p, f"p_q{stage}")
        m.d.comb += self.p.eq(p)
        return m


def _register(m: Module, value, name: str):
    reg = Signal(len(value), name=name, reset_less=True)
    m.d.sync += reg.eq(value)
    return reg
