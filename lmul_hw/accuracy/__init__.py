"""Accuracy of L-Mul against fp8 multiplication and the exact product (``lmul-hw accuracy``).

What is measured, element-wise and in dot products with exact accumulation, is the signed relative
error r = (approx - exact) / exact against the exact result of the original operands; see
``docs/accuracy.md`` for the definitions and how to read the output.

Reusable pieces (a later ``compare`` report builds on them):

- :func:`unit_error` -- ErrorStats (``.mean_abs`` = mean relative error) of a unit configuration
  (``LMulConfig``/``FPMulConfig``) on operands of its format drawn from a distribution;
- :func:`method_error`, :func:`dot_error` -- the same for a :class:`Method` (e.g. fp8 operand rounding)
  on source-format operands, element-wise and for dot products;
- :func:`calibrate` / :func:`scan_offsets` -- the min-mean and zero-bias L-Mul offsets;
- :func:`exact_sum` -- vectorised exact summation (like math.fsum along an axis);
- :func:`analyse` -- the whole analysis behind the command.
"""

from .analysis import (DEFAULT_SAMPLES, DOT_LENGTHS, Report, Settings, analyse, dot_error, method_error,
                       methods_for, operand_pairs, unit_error)
from .calibrate import Calibration, calibrate, lmul_values, scan_offsets
from .cli import add_arguments, run_cli
from .methods import Method, fp8_method, lmul_method, paper_offset, rne_method
from .operands import DISTRIBUTIONS, EXHAUSTIVE, exact_products, finite_pairs, sample_operands
from .paper import PAPER_TABLE7, claims, expected_errors, table7
from .stats import ErrorStats, error_stats, exact_sum, relative_errors

__all__ = [
    "add_arguments", "run_cli",
    "Settings", "Report", "analyse", "unit_error", "method_error", "dot_error", "methods_for", "operand_pairs",
    "Calibration", "calibrate", "scan_offsets", "lmul_values",
    "Method", "lmul_method", "fp8_method", "rne_method", "paper_offset",
    "DISTRIBUTIONS", "EXHAUSTIVE", "sample_operands", "finite_pairs", "exact_products",
    "PAPER_TABLE7", "table7", "claims", "expected_errors",
    "ErrorStats", "error_stats", "exact_sum", "relative_errors", "DEFAULT_SAMPLES", "DOT_LENGTHS",
]
