"""cocotb testbench of the L-Mul unit (SPEC §2): the generated Verilog of ``lmul_hw/hw/lmul.py``
against the bit-exact model ``lmul_hw/model/lmul.py``, many lanes per clock step (``harness.py``).

Run through ``lmul_hw.simulate`` (``lmul-hw verify lmul ...`` or ``tests/test_sim_units.py``),
which generates the Verilog and the harness and passes the configuration and the vectors."""

import cocotb

from harness import check_units


@cocotb.test()
async def test_lmul(dut):
    """Every L-Mul unit of the run: exhaustive (fp8) or specials, edges and random pairs."""
    await check_units(dut, "lmul")
