"""Simulation of generated (or users' own) Verilog under cocotb, against the bit-exact model.

- :mod:`.runner`: simulators, their environment, cached builds, one build and one test run;
- :mod:`.units`: lane harnesses of multiplier units (``sim/test_lmul.py``, ``sim/test_fpmul.py``);
- :mod:`.core`: the tensor core's stream testbench (``sim/test_core.py``);
- :mod:`.user`: users' own Verilog under the same testbenches (ports found and checked before a build);
- :mod:`.results`: the result and mismatch types every run returns.
"""

from .core import CoreDesign, CoreMismatch, CoreVerifyResult, build_core, make_tiles, run_core, verify_core
from .results import Mismatch, Result
from .runner import (INSTALL, SIMULATORS, check_simulator, simulator_available, simulator_version, tool_env,
                     verilator_root)
from .units import (DEFAULT_LANES, HARNESS_NAME, Design, SimResult, UnitMismatch, UnitResult, build, harness_text,
                    run, verify)
from .user import UserRTL, load_user_rtl

__all__ = ["INSTALL", "SIMULATORS", "check_simulator", "simulator_available", "simulator_version", "tool_env",
           "verilator_root", "DEFAULT_LANES", "HARNESS_NAME", "Design", "Mismatch", "Result", "UnitMismatch",
           "SimResult", "UnitResult", "build", "harness_text", "run", "verify", "CoreDesign", "CoreMismatch", "CoreVerifyResult", "build_core",
           "make_tiles", "run_core", "verify_core", "UserRTL", "load_user_rtl"]
