"""cocotb testbench of the exact multiplier (SPEC §3): the generated Verilog of
``lmul_hw/hw/fpmul.py`` against the bit-exact model ``lmul_hw/model/fpmul.py``, many lanes per
clock step (``harness.py``).

Run through ``lmul_hw.simulate`` (``lmul-hw verify fpmul ...`` or ``tests/test_sim_units.py``),
which generates the Verilog and the harness and passes the configuration and the vectors."""

import cocotb

from harness import check_units


@cocotb.test()
async def test_fpmul(dut):
    """Every exact-multiplier unit of the run: exhaustive (fp8) or specials, edges and random pairs."""
    await check_units(dut, "fpmul")
