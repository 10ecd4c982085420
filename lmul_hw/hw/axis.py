"""The tensor core behind AXI4-Stream ports (docs/axis.md): the same array as
:class:`lmul_hw.hw.core.TensorCore`, with its clock, reset and two streams renamed to the port
names AXI IP uses (``aclk``, ``aresetn``, ``s_axis_t*``, ``m_axis_t*``), so that an FPGA SoC's
interconnect, DMA or FIFO connects to it as it is.

``tdata`` carries SPEC §5's payload fields without ``last`` (which goes to ``tlast``), in the same
bit order, zero-padded to a whole number of bytes as AXI4-Stream's byte lanes require.  During
reset (``aresetn`` low) ``s_axis_tready`` and ``m_axis_tvalid`` are held low: AXI4-Stream wants
TVALID low in reset (ARM IHI 0051A, §2.7.2), and no beat may move in a cycle that the reset
discards.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import AxisCoreConfig
from .core import TensorCore


def byte_width(bits: int) -> int:
    """``bits`` rounded up to a whole number of 8-bit byte lanes."""
    return -(-bits // 8) * 8


def input_width(cfg: AxisCoreConfig) -> int:
    """Bits of ``s_axis_tdata``: a (R*W) then b (C*W), padded to bytes."""
    return byte_width((cfg.rows + cfg.cols) * cfg.fmt.width)


def output_width(cfg: AxisCoreConfig) -> int:
    """Bits of ``m_axis_tdata``: c (C fp32 words), already whole bytes."""
    return cfg.cols * 32


class AxisTensorCore(wiring.Component):
    """C = A @ B tile by tile over AXI4-Stream: a tile is one input packet of K beats, its result
    one output packet of R rows; ``tlast`` marks a packet's last beat."""

    def __init__(self, cfg: AxisCoreConfig):
        self.cfg = cfg
        super().__init__({
            "aclk": In(1),
            "aresetn": In(1),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "s_axis_tdata": In(input_width(cfg)),
            "s_axis_tlast": In(1),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
            "m_axis_tdata": Out(output_width(cfg)),
            "m_axis_tlast": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.domains.sync = sync = ClockDomain("sync")
        m.d.comb += [sync.clk.eq(self.aclk), sync.rst.eq(~self.aresetn)]
        m.submodules.core = core = TensorCore(cfg)
        ab = (cfg.rows + cfg.cols) * cfg.fmt.width
        m.d.comb += [
            core.i.valid.eq(self.s_axis_tvalid),
            core.i.payload.a.eq(self.s_axis_tdata[:cfg.rows * cfg.fmt.width]),
            core.i.payload.b.eq(self.s_axis_tdata[cfg.rows * cfg.fmt.width:ab]),
            core.i.payload.last.eq(self.s_axis_tlast),
            self.s_axis_tready.eq(core.i.ready & self.aresetn),
            self.m_axis_tvalid.eq(core.o.valid & self.aresetn),
            core.o.ready.eq(self.m_axis_tready),
            self.m_axis_tdata.eq(core.o.payload.c),
            self.m_axis_tlast.eq(core.o.payload.last),
        ]
        return m
