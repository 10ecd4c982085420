"""Tests of the accuracy analysis (lmul_hw.accuracy) and of the ``lmul-hw accuracy`` command."""

from __future__ import annotations

import csv
import json
import math
from fractions import Fraction

import numpy as np
import pytest

from lmul_hw.accuracy import (PAPER_TABLE7, Settings, analyse, calibrate, claims, dot_error, error_stats,
                              exact_products, exact_sum, expected_errors, finite_pairs, fp8_method, lmul_method,
                              lmul_values, method_error, operand_pairs, paper_offset, rne_method, sample_operands,
                              scan_offsets, table7, unit_error)
from lmul_hw.accuracy.analysis import _dot_operands, dots_chunked
from lmul_hw.accuracy.operands import convert, fast_decode, rng_for, sample_pairs
from lmul_hw.cli import main
from lmul_hw.config import LMulConfig, core_unit
from lmul_hw.formats import FpClass, classify, decode, encode, get_format
from lmul_hw.model import matmul
from lmul_hw.model.matmul import products


# -- statistics ------------------------------------------------------------------------------------

def test_error_stats_hand_computed():
    exact = np.array([1.0, 2.0, -4.0, 1.0, 0.0, np.inf])
    approx = np.array([1.25, 0.0, -3.0, np.nan, 1.0, 1.0])
    s = error_stats(approx, exact)
    # r = +0.25 (over), -1 (flushed to zero), (-3 - -4) / -4 = -0.25 (magnitude under); NaN excluded;
    # exact 0 and inf have no relative error and are skipped
    assert (s.n, s.n_flushed, s.n_excluded, s.n_skipped) == (3, 1, 1, 2)
    assert s.mean_abs == pytest.approx(0.5)
    assert s.mse == pytest.approx((0.0625 + 1 + 0.0625) / 3)
    assert s.bias == pytest.approx(-1 / 3)
    assert s.max_abs == 1.0 and s.median_abs == 0.25
    assert s.rms == pytest.approx(math.sqrt(s.mse))


def test_error_stats_empty():
    s = error_stats(np.array([np.nan]), np.array([0.0]))
    assert s.n == 0 and math.isnan(s.mean_abs) and s.n_skipped == 1


# -- exact summation -------------------------------------------------------------------------------

def test_exact_sum_matches_fsum_on_hard_rows():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((300, 257)) * np.ldexp(1.0, rng.integers(-80, 80, (300, 257)))
    x[:, :20] = -x[:, 20:40]                                   # heavy cancellation
    x[:5] = 0.0
    x[5, :3] = [1.0, 2.0 ** -53, 0.0]                          # exact ties: round half to even
    x[6, :3] = [1.0, 2.0 ** -53, 2.0 ** -200]                  # just above a tie
    x[7, :3] = [3.0, 2.0 ** -52, -2.0 ** -300]                 # just below a tie
    x[8, :2] = [5e-324, 5e-324]                                # subnormals
    got = exact_sum(x)
    want = np.array([math.fsum(row) for row in x.tolist()])
    assert np.array_equal(got, want)
    # along another axis, and the degenerate shapes
    assert np.array_equal(exact_sum(x.T, axis=0), want)
    assert exact_sum(np.zeros((3, 0))).tolist() == [0.0, 0.0, 0.0]
    assert exact_sum(np.array([[np.inf, 1.0], [np.nan, 1.0], [1e308, 1e308]])).tolist()[0] == math.inf
    assert math.isnan(exact_sum(np.array([np.nan, 1.0])))


# -- operands and methods --------------------------------------------------------------------------

def test_samples_are_reproducible_prefix_consistent_and_in_format():
    a1, b1 = sample_pairs("gaussian", 70000, "bf16", seed=3)
    a2, b2 = sample_pairs("gaussian", 1000, "bf16", seed=3)
    assert np.array_equal(a1[:1000], a2) and np.array_equal(b1[:1000], b2)
    assert not np.array_equal(sample_pairs("gaussian", 1000, "bf16", seed=4)[0], a2)
    v = decode(a1, "bf16")
    assert abs(v.std() - 1) < 0.02 and np.array_equal(encode(v, "bf16"), a1)       # already bf16 values
    h = decode(sample_pairs("heavy", 70000, "bf16", seed=3)[0], "bf16")
    assert abs(h.std() - 1) < 0.2 and np.abs(h).max() > 8                           # t3: heavy tails
    u = sample_pairs("uniform", 70000, "e4m3", seed=3)[0]
    e = (u.astype(int) >> 3) & 15
    assert set(np.unique(e - 7)) == set(range(-4, 5)) and len(np.unique(u & 7)) == 8
    with pytest.raises(ValueError):
        rng_for(0, "cauchy", "elementwise")


def test_fp8_conversion_saturates_and_rounds_like_encode():
    codes = np.arange(1 << 16, dtype=np.uint16)
    want = encode(decode(codes, "bf16"), "e4m3", overflow="saturate")
    assert np.array_equal(convert(codes, "bf16", "e4m3"), want)
    big = encode(np.array([1000.0, -1e30]), "bf16")
    assert decode(convert(big, "bf16", "e4m3"), "e4m3").tolist() == [448.0, -448.0]
    assert np.array_equal(fast_decode(codes, "bf16"), decode(codes, "bf16"), equal_nan=True)


def test_method_products_are_the_models():
    a, b = sample_pairs("gaussian", 5000, "bf16", seed=1)
    for k in (1, 4, 7):
        m = lmul_method("bf16", k)
        assert m.offset == paper_offset(k) and m.rule == "paper"
        assert np.array_equal(m.products(a, b, "bf16"), products(a, b, m.unit))
    m = fp8_method("e5m2")
    x, y = (encode(decode(v, "bf16"), "e5m2", overflow="saturate") for v in (a, b))
    assert np.array_equal(m.products(a, b, "bf16"), decode(x, "e5m2") * decode(y, "e5m2"))
    r = rne_method("bf16")
    assert np.array_equal(r.products(a, b, "bf16"), decode(encode(exact_products(a, b, "bf16"), "bf16"), "bf16"))


def test_lmul_values_match_the_model_bit_for_bit():
    a, b = finite_pairs("e4m3")
    for k in (1, 2, 3):
        for c in (0, 1, (1 << k) - 1, 1 << k):
            unit = core_unit("lmul", "e4m3", k=k, offset=c)
            want = products(a, b, unit)
            got = lmul_values(a, b, "e4m3", k, c)
            assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))
    rng = np.random.default_rng(2)
    x = rng.integers(0, 1 << 16, 20000).astype(np.uint16)       # every class, NaN and inf included
    y = rng.integers(0, 1 << 16, 20000).astype(np.uint16)
    special = np.isin(classify(x, "bf16"), (FpClass.INF, FpClass.NAN)) | \
        np.isin(classify(y, "bf16"), (FpClass.INF, FpClass.NAN))
    for k, c in ((3, 1), (7, 8), (5, 32)):
        want = products(x, y, core_unit("lmul", "bf16", k=k, offset=c))
        got = lmul_values(x, y, "bf16", k, c)
        assert np.array_equal(got[~special], want[~special]) and np.isnan(got[special]).all()


# -- exhaustive fp8 numbers ------------------------------------------------------------------------

def _reference_lmul(ea, ma, eb, mb, k, c, bias):
    """SPEC §2 for normal operands in exact rationals: one integer addition, then the carry."""
    r = (ea * 2 ** k + ma) + (eb * 2 ** k + mb) + c
    e, m = divmod(r, 2 ** k)
    return Fraction(2 ** k + m, 2 ** k) * Fraction(2) ** (e - 2 * bias)


def test_exhaustive_e4m3_numbers_against_a_rational_reference():
    f = get_format("e4m3")
    k, c = 3, paper_offset(3)
    normal = [code for code in range(128) if 1 <= code >> 3 <= 15 and code != 0x7F]
    errs = []
    for x in normal:
        for y in normal:
            ex, mx, ey, my = x >> 3, x & 7, y >> 3, y & 7
            exact = Fraction(8 + mx, 8) * Fraction(8 + my, 8) * Fraction(2) ** (ex + ey - 2 * f.bias)
            errs.append(_reference_lmul(ex, mx, ey, my, k, c, f.bias) / exact - 1)
    mean = float(sum(abs(e) for e in errs) / len(errs))
    bias = float(sum(errs) / len(errs))
    a, b = finite_pairs("e4m3")
    normal_pairs = (classify(a, f) == FpClass.NORMAL) & (classify(b, f) == FpClass.NORMAL)
    s = error_stats(lmul_method("e4m3", k).products(a, b, "e4m3")[normal_pairs], exact_products(a, b, f)[normal_pairs])
    assert s.n == 4 * len(errs) == 4 * 119 * 119          # both signs of every normal code; the signs cancel
    assert s.mean_abs == pytest.approx(mean, rel=1e-12) and s.bias == pytest.approx(bias, rel=1e-12)
    # pinned: the exhaustive numbers are exact and reproducible
    assert round(s.mean_abs, 6) == 0.052172 and round(s.bias, 6) == 0.049005
    full = unit_error(core_unit("lmul", "e4m3", k=3), "exhaustive")
    assert full == unit_error(core_unit("lmul", "e4m3", k=3), "exhaustive")
    # 252 nonzero finite codes; the 14 subnormal ones are flushed: 252^2 - 238^2 pairs at |r| = 1
    assert full.n == 252 * 252 and full.n_flushed == 252 ** 2 - 238 ** 2
    assert full.mean_abs == pytest.approx((full.n - full.n_flushed) / full.n * mean + full.n_flushed / full.n,
                                          rel=1e-12)
    assert full.bias == pytest.approx((full.n - full.n_flushed) / full.n * bias - full.n_flushed / full.n, rel=1e-12)


# -- calibration -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,pop,k", [("bf16", "gaussian", 3), ("bf16", "heavy", 6), ("e4m3", "exhaustive", 3),
                                       ("e5m2", "uniform", 2)])
def test_calibration_finds_the_minimum_of_a_brute_force_scan(fmt, pop, k):
    a, b = operand_pairs(pop, fmt, 20000, seed=5)
    cal = calibrate(a, b, fmt, k, pop)
    f = get_format(fmt)
    normal = (classify(a, f) == FpClass.NORMAL) & (classify(b, f) == FpClass.NORMAL)
    exact = exact_products(a, b, f)
    means, biases = [], []
    for c in range(1 << k | 1):
        s = error_stats(products(a, b, core_unit("lmul", f, k=k, offset=c))[normal], exact[normal])
        means.append(s.mean_abs)
        biases.append(s.bias)
    assert np.allclose(cal.mean_abs, means, rtol=1e-12) and np.allclose(cal.bias, biases, rtol=1e-12, atol=1e-15)
    assert cal.min_mean == int(np.argmin(means))
    assert abs(biases[cal.zero_bias]) == min(abs(v) for v in biases)
    assert cal.paper == paper_offset(k) and cal.n == int(normal.sum())


def test_scan_offsets_rejects_out_of_range_offsets():
    a, b = operand_pairs("gaussian", "bf16", 100)
    with pytest.raises(ValueError):
        scan_offsets(a, b, "bf16", 3, offsets=[9])


# -- the paper's Table 7 and claims ------------------------------------------------------------------

def test_table7_expectations_hand_computed_for_k1():
    e = expected_errors(1)
    # k = 1, c = 1: mantissas {0, 1/2}; the adder gives 3/2, 2, 2, 3 for exact 1, 3/2, 3/2, 9/4
    assert e["mean_abs_kbit"] == pytest.approx((0.5 + 3 * (1 / 3)) / 4)
    assert e["mean_abs_eq1_kbit"] == pytest.approx(23 / 72)          # eq. 1: 3/2, 2, 2, 5/2
    assert e["dropped_term_kbit"] == pytest.approx(0.4375)
    rows = table7()
    assert [r["paper_f1"] for r in rows[:6]] == [PAPER_TABLE7[k] for k in range(1, 7)] and rows[6]["paper_f1"] is None


@pytest.mark.parametrize("k", [2, 5])
def test_uniform_measurement_matches_the_exact_expectation(k):
    s = method_error(lmul_method("bf16", k), "uniform", "bf16", samples=1 << 17, seed=0)
    assert s.mean_abs == pytest.approx(expected_errors(k)["mean_abs_src"], abs=5e-4)


def test_claims_and_dot_products_from_a_small_analysis():
    report = analyse(Settings(formats=("bf16",), dists=("gaussian",), samples=1 << 15, seed=1,
                              dot_lengths=(64, 512)))
    verdicts = claims(report)
    assert [v["k"] for v in verdicts] == [4, 3]
    for v in verdicts:
        assert v["ratio"] == pytest.approx(v["lmul_mean_abs"] / v["fp8_mean_abs"])
        assert v["holds"] == (v["ratio"] <= v["limit"] if v["limit"] != 1 else v["ratio"] < 1)
    dots = [r for r in report.rows if r["kind"] == "dot"]
    assert {r["length"] for r in dots} == {64, 512}
    assert all(r["n"] + r["n_skipped"] + r["n_excluded"] == report.settings.dots(r["length"]) for r in dots)
    rne = [r for r in dots if r["mul"] == "rne"]
    assert all(r["median_abs"] < 0.01 for r in rne)                     # 8-bit RNE products: small errors


def test_dot_products_agree_with_the_tensor_core_model():
    # e4m3 L-Mul with exact accumulation: the model's matmul rounds the exact sum once to fp32; our sums
    # of these products are exact in float64 (span < 53 bits), so rounding them to fp32 must agree
    A, B = _dot_operands("gaussian", "e4m3", 64, 48, seed=2)
    m = lmul_method("e4m3", 3)
    ours = dots_chunked(m, A, B, "e4m3").astype(np.float32).view(np.uint32)
    core = np.diagonal(matmul(A, B.T, mul="lmul", fmt="e4m3", acc="exact", k=3))
    assert np.array_equal(ours, core)
    exact = fp8_method("e4m3")          # e4m3 operands rounded to e4m3: nothing changes, products exact
    s = dot_error(exact, "gaussian", "e4m3", length=64, dots=48, seed=2)
    assert s.max_abs == 0.0 and s.n == 48


def test_unit_error_for_a_unit_configuration():
    s = unit_error(LMulConfig("bf16", k=4), "gaussian", samples=1 << 15)
    assert 0.025 < s.mean_abs < 0.04 and s.n == 1 << 15
    assert unit_error(core_unit("fpmul", "e4m3"), "gaussian", samples=4096).max_abs == 0.0


def test_settings_validation():
    for bad in (dict(formats=("fp32",)), dict(formats=("e9m9",)), dict(dists=("cauchy",)), dict(samples=0),
                dict(formats=())):
        with pytest.raises(ValueError):
            Settings(**bad)
    with pytest.raises(ValueError):
        sample_operands("uniform", 4, "e2m1", np.random.default_rng(0))


# -- the command line ------------------------------------------------------------------------------

def test_cli_writes_csv_json_png_atomically(tmp_path, capsys):
    out = tmp_path / "acc"
    status = main(["accuracy", "--format", "bf16,e4m3", "--dist", "gaussian", "--samples", "4096",
                   "--seed", "3", "--out", str(out)])
    assert status == 0
    captured = capsys.readouterr()
    assert "L-Mul k=4 about as accurate as e4m3" in captured.out and "Table 7" in captured.out
    assert "accuracy: [" in captured.err                     # progress lines go to stderr
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]     # no temporary files left
    for name in ("accuracy.json", "accuracy_results.csv", "accuracy_calibration.csv", "accuracy_table7.csv",
                 "accuracy.txt", "accuracy_vs_k.png", "accuracy_dot.png", "accuracy_calibration_mean.png"):
        assert name in names
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((out / "accuracy.json").read_text())
    assert doc["settings"]["samples"] == 4096 and doc["settings"]["seed"] == 3
    assert "mean r^2" in doc["definitions"]["mse"]
    rows = list(csv.DictReader((out / "accuracy_results.csv").open()))
    assert len(rows) == len(doc["results"])
    row = next(r for r in rows if r["method"] == "fp8_e4m3" and r["kind"] == "elementwise")
    assert float(row["mean_abs"]) == pytest.approx(next(
        r["mean_abs"] for r in doc["results"] if r["method"] == "fp8_e4m3" and r["kind"] == "elementwise"))
    assert (out / "accuracy.txt").read_text() == captured.out.split("wrote ")[0]
    # the same seed gives the same numbers
    main(["accuracy", "--format", "bf16,e4m3", "--dist", "gaussian", "--samples", "4096", "--seed", "3",
          "--out", str(out), "--no-plots"])
    assert json.loads((out / "accuracy.json").read_text())["results"] == doc["results"]


@pytest.mark.parametrize("argv,needle", [
    (["--format", "fp64"], "format"),
    (["--format", "fp32"], "fp32"),
    (["--dist", "cauchy"], "cauchy"),
    (["--samples", "0"], "samples"),
    (["--seed", "x"], "seed"),
    (["--seed", "-1"], "seed"),
])
def test_cli_bad_input_exits_2_with_one_line(argv, needle, capsys):
    assert _exit_status(["accuracy", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("lmul-hw") and needle in err


def test_cli_unwritable_out_fails_before_the_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["accuracy", "--out", str(blocker / "sub")]) == 2     # default (full-size) run: must stop first
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lmul-hw: error:") and "accuracy: [" not in err


def _exit_status(argv):
    try:
        return main(argv)
    except SystemExit as exc:               # argparse errors exit through the parser
        return exc.code
