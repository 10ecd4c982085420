"""The sweep spec (SPEC §7): parsing, points, exclusions, invalid combinations, --dry-run, and bad
specs refused with exit status 2 in one line naming the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lmul_hw.cli import main
from lmul_hw.sweep.engine import plan
from lmul_hw.sweep.spec import STAGES, load_spec, parse_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "sweeps"

UNIT = """
[sweep]
kind = "unit"
stages = ["cmos", "accuracy"]
[axes]
mul = ["lmul", "fpmul"]
format = ["e4m3", "e5m2"]
k = { start = 1, stop = 3, step = 1 }
subnormals = ["ftz"]
"""


def _spec(text: str, tmp_path: Path, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_points_drop_axes_that_do_not_apply_and_collapse_duplicates(tmp_path):
    points, tasks = plan(load_spec(_spec(UNIT, tmp_path)))
    # lmul: 2 formats x 3 k; fpmul: k and its 3 values are dropped, leaving one point per format
    assert len(points) == 8
    fpmul = [p for p in points if p.values["mul"] == "fpmul"]
    assert [p.values for p in fpmul] == [{"mul": "fpmul", "format": f, "k": None, "subnormals": "ftz"}
                                         for f in ("e4m3", "e5m2")]
    assert [p.name for p in fpmul] == ["fpmul_e4m3_ftz", "fpmul_e5m2_ftz"]
    lmul = [p for p in points if p.values["mul"] == "lmul"]
    assert all(p.values["subnormals"] is None for p in lmul)
    assert len(tasks) == 2 * sum(p.valid for p in points)


def test_k_above_the_mantissa_width_is_an_invalid_point_with_the_reason(tmp_path):
    points, _ = plan(load_spec(_spec(UNIT, tmp_path)))
    bad = [p for p in points if not p.valid]
    assert [(p.values["format"], p.values["k"]) for p in bad] == [("e5m2", 3)]
    assert bad[0].reason == "k = 3 is out of range 1..2"
    assert bad[0].name == "" and bad[0].stages == ()


def test_exclude_removes_matching_points_and_accepts_lists(tmp_path):
    text = UNIT + '\n[[exclude]]\nformat = "e5m2"\nk = 3\n\n[[exclude]]\nmul = "lmul"\nk = [1, 2]\nformat = "e4m3"\n'
    points, _ = plan(load_spec(_spec(text, tmp_path)))
    keys = [(p.values["mul"], p.values["format"], p.values["k"]) for p in points]
    assert ("lmul", "e5m2", 3) not in keys and ("lmul", "e4m3", 1) not in keys and ("lmul", "e4m3", 2) not in keys
    assert ("lmul", "e4m3", 3) in keys and ("fpmul", "e5m2", None) in keys
    assert len(points) == 5


def test_ranges_are_inclusive_and_step_defaults_to_one(tmp_path):
    spec = load_spec(_spec(UNIT.replace("k = { start = 1, stop = 3, step = 1 }", "k = { start = 1, stop = 7, step = 3 }")
                           .replace('["e4m3", "e5m2"]', '["bf16"]'), tmp_path))
    assert spec.axes["k"] == (1, 4, 7)
    spec = load_spec(_spec(UNIT.replace(", step = 1", ""), tmp_path))
    assert spec.axes["k"] == (1, 2, 3)


def test_core_axes_size_or_rows_by_cols(tmp_path):
    core = """
    [sweep]
    kind = "core"
    stages = ["cmos"]
    [axes]
    rows = [1, 2]
    cols = [2, 3]
    mul = ["lmul"]
    format = ["e4m3", "bf16"]
    acc = ["exact"]
    depth = [16]
    """
    points, _ = plan(load_spec(_spec(core, tmp_path)))
    assert [(p.values["rows"], p.values["cols"]) for p in points if p.valid] == [(1, 2), (1, 3), (2, 2), (2, 3)]
    assert points[0].name == "core_1x2_e4m3_lmul_k3_c1_exact_d16"
    bf16 = [p for p in points if p.values["format"] == "bf16"]
    assert len(bf16) == 4 and not any(p.valid for p in bf16)          # bf16's Kulisch accumulator is too wide
    assert "accumulator" in bf16[0].reason
    sized = core.replace("rows = [1, 2]\n    cols = [2, 3]", 'size = ["2x2", "4X4"]')
    points, _ = plan(load_spec(_spec(sized, tmp_path)))
    assert [p.values["size"] for p in points] == ["2x2", "2x2", "4x4", "4x4"]   # size is the outer axis
    assert points[2].cfg.rows == 4 and points[2].cfg.cols == 4


def test_every_stage_of_spec_7_is_accepted(tmp_path):
    stages = ", ".join(f'"{s}"' for s in STAGES)
    spec = load_spec(_spec(UNIT.replace('stages = ["cmos", "accuracy"]', f"stages = [{stages}]"), tmp_path))
    assert spec.stages == STAGES
    assert spec.options("fmax") == {"targets": ["ice40", "ecp5"]}


def test_workload_stage_is_dropped_where_it_does_not_apply(tmp_path):
    text = """
    [sweep]
    kind = "unit"
    stages = ["cmos", "workload"]
    [axes]
    mul = ["lmul"]
    format = ["bf16"]
    overflow = ["ieee", "saturate"]
    """
    points, tasks = plan(load_spec(_spec(text, tmp_path)))
    assert points[0].stages == ("cmos", "workload")
    assert points[1].stages == ("cmos",) and "overflow" in points[1].skipped["workload"]
    assert len(tasks) == 3


def test_dry_run_prints_points_and_stages(tmp_path, capsys):
    assert main(["sweep", str(_spec(UNIT, tmp_path)), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "8 points (7 valid, 1 invalid), 14 stage runs" in out
    assert "lmul_e4m3_k1_c1  mul=lmul format=e4m3 k=1  stages: cmos, accuracy" in out
    assert "mul=lmul format=e5m2 k=3: k = 3 is out of range 1..2" in out
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["fp8_units.toml", "core_sizes.toml", "bf16_workload.toml"])
def test_examples_parse(name):
    spec = load_spec(EXAMPLES / name)
    points, tasks = plan(spec)
    assert tasks and len(points) >= 6


def test_spec_dict_round_trip_keeps_the_text(tmp_path):
    path = _spec(UNIT, tmp_path)
    assert load_spec(path).text == path.read_text()
    assert parse_spec({"sweep": {"kind": "unit", "stages": ["cmos"]},
                       "axes": {"mul": ["lmul"], "format": ["e4m3"]}}).axes == {"mul": ("lmul",), "format": ("e4m3",)}


# -- bad specs: exit 2, one line naming the key ----------------------------------------------------

BAD = {
    "not TOML": ("[sweep\nkind = 1", "not valid TOML"),
    "missing kind": (UNIT.replace('kind = "unit"\n', ""), "sweep.kind: required key is missing"),
    "unknown kind": (UNIT.replace('kind = "unit"', 'kind = "chip"'), "sweep.kind: unknown kind 'chip'"),
    "unknown top-level key": (UNIT + "\n[extra]\nx = 1\n", "extra: unknown key"),
    "unknown sweep key": (UNIT.replace('kind = "unit"', 'kind = "unit"\nspeed = 3'), "sweep.speed: unknown key"),
    "unknown stage": (UNIT.replace('"accuracy"]', '"area"]'), "sweep.stages: unknown value 'area'"),
    "stages of the wrong type": (UNIT.replace('stages = ["cmos", "accuracy"]', 'stages = "cmos"'),
                                 "sweep.stages: must be a list of strings, not a string"),
    "empty axis": (UNIT.replace('subnormals = ["ftz"]', "subnormals = []"), "axes.subnormals: is empty"),
    "unknown format": (UNIT.replace('"e5m2"]', '"e9x"]'), "axes.format: unknown format 'e9x'"),
    "axis of the other kind": (UNIT + "acc = [\"exact\"]\n", "axes.acc: unknown key"),
    "value of the wrong type": (UNIT.replace("k = { start = 1, stop = 3, step = 1 }", 'k = [1, "2"]'),
                                "axes.k: values must be integers; '2' is a string"),
    "boolean for an integer": (UNIT.replace("k = { start = 1, stop = 3, step = 1 }", "k = [true]"),
                               "axes.k: values must be integers; True is a boolean"),
    "empty range": (UNIT.replace("start = 1, stop = 3", "start = 3, stop = 1"), "axes.k: empty range"),
    "zero step": (UNIT.replace("step = 1", "step = 0"), "axes.k.step: must be at least 1"),
    "range key": (UNIT.replace("step = 1", "by = 1"), "axes.k.by: unknown key"),
    "scalar axis": (UNIT.replace('subnormals = ["ftz"]', 'subnormals = "ftz"'),
                    "axes.subnormals: must be a list or a {start, stop, step} range, not a string"),
    "missing required axis": (UNIT.replace('format = ["e4m3", "e5m2"]\n', ""), "axes.format: required for unit sweeps"),
    "no axes": ('[sweep]\nkind = "unit"\nstages = ["cmos"]\n', "axes: missing [axes] table"),
    "unknown choice": (UNIT.replace('["ftz"]', '["flush"]'), "axes.subnormals: unknown value 'flush'"),
    "exclude key not an axis": (UNIT + '\n[[exclude]]\nlatency = 1\n', "exclude[1].latency: unknown key"),
    "fmax without a nextpnr family": (UNIT.replace('"accuracy"]', '"fmax"]\ntargets = ["xilinx"]'),
                                      "sweep.targets: the fmax stage places and routes on ice40 or ecp5"),
    "unknown target": (UNIT.replace('"accuracy"]', '"fpga"]\ntargets = ["virtex"]'), "sweep.targets: unknown value"),
    "bad size": ('[sweep]\nkind = "core"\nstages = ["cmos"]\n[axes]\nsize = ["4by4"]\nmul = ["lmul"]\n'
                 'format = ["e4m3"]\nacc = ["exact"]\ndepth = [8]\n', "axes.size: '4by4' is not a size"),
    "size and rows": ('[sweep]\nkind = "core"\nstages = ["cmos"]\n[axes]\nsize = ["4x4"]\nrows = [2]\nmul = ["lmul"]\n'
                      'format = ["e4m3"]\nacc = ["exact"]\ndepth = [8]\n', "axes.size: give size or rows and cols"),
    "stage listed twice": (UNIT.replace('"accuracy"]', '"cmos"]'), "sweep.stages: 'cmos' is listed twice"),
    "unknown distribution": (UNIT.replace('kind = "unit"', 'kind = "unit"\ndistribution = "normal"'),
                             "sweep.distribution: unknown value 'normal'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_is_exit_2_in_one_line_naming_the_key(case, tmp_path, capsys):
    text, expected = BAD[case]
    path = _spec(text, tmp_path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"lmul-hw: error: {path}: ")
    assert expected in lines[0], lines[0]
    assert captured.out == "" and not (tmp_path / "out").exists()


def test_a_missing_spec_file_is_exit_2(tmp_path, capsys):
    assert main(["sweep", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "out")]) == 2
    assert "cannot read sweep spec" in capsys.readouterr().err

