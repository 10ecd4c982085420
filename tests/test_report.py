"""The report writer: Markdown and HTML carry the same tables, every number lands in CSV and JSON,
charts are PNGs, and the files are written atomically into the output directory."""

import csv
import json

import pytest

from lmul_hw.compare import Claim, Design, Row, dot_product_claim, unit_designs
from lmul_hw.config import LMulConfig, PEConfig
from lmul_hw.report import markdown, to_html, write_report

VERSIONS = {"lmul-hw": "test", "yosys": "Yosys 0.70"}


def rows():
    lm, ftz, full = unit_designs(("e4m3",))
    pe_l = Design("PE e4m3", "L-Mul", PEConfig("lmul", "e4m3", "exact", 256))
    pe_x = Design("PE e4m3", "exact ftz", PEConfig("fpmul", "e4m3", "exact", 256, subnormals="ftz"))
    return [Row(lm, {"transistors": 610, "xilinx_luts": 34, "energy_pj": 0.03, "mean_rel_err": 0.1}),
            Row(ftz, {"transistors": 1146, "xilinx_luts": 50, "energy_pj": 0.06, "mean_rel_err": 0.07}),
            Row(full, {"transistors": 2034, "energy_pj": 0.09}),
            Row(pe_l, {"transistors": 10000, "energy_pj": 0.7, "clock_pj": 0.44}),
            Row(pe_x, {"transistors": 11000, "energy_pj": 0.8, "clock_pj": 0.48})]


def test_markdown_tables_hold_the_numbers_and_skip_unmeasured_columns():
    md = markdown(rows(), [Claim("§1", "a claim", "80%", "13%", "does not hold")], VERSIONS)
    assert "| e4m3 L-Mul k=3 | 610 | 34 | 0.0300 | 10.00% |" in md
    assert "| e4m3 exact full | 2,034 | - | 0.0900 | - |" in md
    assert "Fmax" not in md                                  # nothing measured: no column
    assert "| PE e4m3 L-Mul | 10,000 | 10,000 |" in md       # transistors per PE of a 1x1 array
    assert "**does not hold**" in md and "Yosys 0.70" in md


def test_html_renders_the_same_tables():
    md = markdown(rows(), [], VERSIONS, sections=[("Notes", "- one `item`\n\n![c](c.png)")])
    page = to_html(md, "t")
    assert page.count("<table>") == 2 and "<td>610</td>" in page
    assert "<li>one <code>item</code></li>" in page and '<img alt="c" src="c.png">' in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_write_report_writes_every_format(tmp_path):
    paths = write_report(tmp_path / "out", rows(), [], VERSIONS, stem="compare")
    names = {p.name for p in paths}
    assert {"compare.md", "compare.html", "comparison.csv", "comparison.json", "transistors.png"} <= names
    assert (tmp_path / "out" / "transistors.png").read_bytes()[:4] == b"\x89PNG"
    table = list(csv.DictReader((tmp_path / "out" / "comparison.csv").open()))
    assert table[0]["top"] == "lmul_e4m3_k3_c1" and table[0]["transistors"] == "610"
    data = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert data["designs"][1]["config"]["subnormals"] == "ftz" and data["versions"] == VERSIONS
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]   # no temporaries


def test_unwritable_output_is_a_value_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError):
        write_report(tmp_path / "file" / "sub", rows(), [], VERSIONS)


def test_dot_product_claim_from_pe_energy():
    claim = dot_product_claim(rows())
    assert claim.ours.startswith("13% per MAC") and claim.verdict == "does not hold"
    assert "19% of the logic energy" in claim.ours       # (0.26 vs 0.32 pJ without clock)


def test_registered_twin_of_a_unit_has_latency_2():
    d = Design("e4m3", "L-Mul", LMulConfig("e4m3")).registered()
    assert d.cfg.latency == 2 and d.top == "lmul_e4m3_k3_c1_l2"
