"""``lmul-hw sweep`` on Dask: a LocalCluster gives what a serial run gives, a fully cached rerun starts no
cluster, a killed worker or an interrupted sweep loses nothing and computes nothing twice, a dead
scheduler is exit 2 within 30 s, and workers that run other source are refused.

The sweeps are tiny (a few e4m3 units) and mostly use the accuracy stage (numpy, a fraction of a
second); the test hooks of lmul_hw.sweep.stages slow stages down (LMUL_HW_SWEEP_DELAY) so there is
time to interrupt them, and record every computed (point, stage) (LMUL_HW_SWEEP_TRACE)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmul_hw.sweep.stages import DELAY_ENV, TRACE_ENV

from conftest import default_sigint

ROOT = Path(__file__).resolve().parent.parent

SPEC = """
[sweep]
kind = "unit"
stages = [{stages}]
[axes]
mul = ["lmul", "fpmul"]
format = {formats}
k = {k}
subnormals = ["ftz"]
"""


def _spec(tmp_path: Path, stages=("accuracy",), k="[1, 2, 3]", formats='["e4m3"]', name="spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(SPEC.format(stages=", ".join(f'"{s}"' for s in stages), k=k, formats=formats))
    return path


def _env(cache: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (DELAY_ENV, TRACE_ENV)}
    env.update(LMUL_HW_CACHE=str(cache), PYTHONPATH=str(ROOT), **{k: str(v) for k, v in extra.items()})
    return env


def _sweep(args, env, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmul_hw.cli", "sweep", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _start(args, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lmul_hw.cli", "sweep", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


def _rows(out: Path) -> list[dict]:
    with open(out / "points.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _trace(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split()[:2]) for line in path.read_text().splitlines()]


def _wait_for(condition, timeout: float, what: str, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the sweep ended (status {proc.returncode}) before {what}:\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_local_cluster_equals_serial_and_a_cached_rerun_starts_no_cluster(tmp_path):
    spec = _spec(tmp_path, stages=("cmos", "accuracy"))
    serial = _sweep([spec, "--out", tmp_path / "serial", "--workers", "0"], _env(tmp_path / "cache-serial"))
    assert serial.returncode == 0, serial.stderr
    env = _env(tmp_path / "cache")
    first = _sweep([spec, "--out", tmp_path / "cluster", "--workers", "2"], env)
    assert first.returncode == 0, first.stderr
    assert "running on a LocalCluster of 2 workers" in first.stderr
    assert "dashboard http://127.0.0.1:" in first.stderr
    assert (tmp_path / "serial" / "points.csv").read_text() == (tmp_path / "cluster" / "points.csv").read_text()
    rows = _rows(tmp_path / "cluster")
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert all(int(r["transistors"]) > 300 and 0 < float(r["mean_rel_error"]) < 1 for r in rows)
    # one line per finished point
    assert sum(bool(re.match(r"\[\d/4\] (lmul|fpmul)_e4m3\w*: ok transistors=\d+", line))
               for line in first.stderr.splitlines()) == 4

    again = _sweep([spec, "--out", tmp_path / "cluster", "--workers", "2"], env)
    assert again.returncode == 0, again.stderr
    assert "8 stage runs, 8 of them in the cache" in again.stderr
    assert "running on" not in again.stderr                       # no cluster was started (its time: bench_sweep.py)
    assert (tmp_path / "cluster" / "points.csv").read_text() == (tmp_path / "serial" / "points.csv").read_text()

    # each point's transistors equal `lmul-hw synth` on that point
    for row in rows:
        design = ["lmul", "--format", "e4m3", "--k", row["k"]] if row["mul"] == "lmul" else \
            ["fpmul", "--format", "e4m3", "--subnormals", "ftz"]
        synth = subprocess.run([sys.executable, "-m", "lmul_hw.cli", "synth", *design, "--target", "cmos", "--json"],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert synth.returncode == 0, synth.stderr
        cmos = json.loads(synth.stdout)["results"][0]
        assert (int(row["transistors"]), int(row["logic_depth"])) == (cmos["transistors"], cmos["depth"]), row


def _worker_pids(pid: int) -> list[int]:
    import psutil
    return [p.pid for p in psutil.Process(pid).children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline())]


def test_a_killed_worker_has_its_task_rerun_and_the_sweep_finishes(tmp_path):
    trace = tmp_path / "trace.txt"
    spec = _spec(tmp_path, k="[1, 2, 3]")                          # 4 points, one stage each
    proc = _start([spec, "--out", tmp_path / "out", "--workers", "2"],
                  _env(tmp_path / "cache", **{DELAY_ENV: 2, TRACE_ENV: trace}))
    try:
        _wait_for(lambda: len(_trace(trace)) >= 2, 120, "two finished tasks", proc)
        time.sleep(0.3)                                            # both workers are now inside their next task
        workers = _worker_pids(proc.pid)
        assert len(workers) == 2, workers
        os.kill(workers[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert [r["status"] for r in _rows(tmp_path / "out")] == ["ok"] * 4
    assert sorted(_trace(trace)) == sorted(set(_trace(trace))) and len(_trace(trace)) == 4


def test_sigint_then_rerun_resumes_and_computes_no_point_twice(tmp_path):
    trace = tmp_path / "trace.txt"
    spec = _spec(tmp_path, k="[1, 2, 3]", formats='["e4m3", "bf16"]')      # 8 points, one stage each
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("an earlier sweep")
    env = _env(tmp_path / "cache", **{TRACE_ENV: trace})
    proc = _start([spec, "--out", out, "--workers", "2"], {**env, DELAY_ENV: "1.5"})
    try:
        _wait_for(lambda: len(_trace(trace)) >= 2, 120, "two finished tasks", proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]        # an interrupted sweep leaves DIR alone
    before = _trace(trace)
    assert 2 <= len(before) < 8                   # the tasks running at the interrupt may finish, no others

    rerun = _sweep([spec, "--out", out, "--workers", "2"], env)
    assert rerun.returncode == 0, rerun.stderr
    assert f"8 stage runs, {len(before)} of them in the cache" in rerun.stderr
    after = _trace(trace)
    assert len(after) == 8 and len(set(after)) == 8, after            # every (stage, point) computed once
    assert [r["status"] for r in _rows(out)] == ["ok"] * 8
    assert not (out / "old.txt").exists()                             # replaced after success


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_scheduler_is_exit_2_within_30_s_naming_it(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    result = _sweep([_spec(tmp_path, k="[1]"), "--out", tmp_path / "out", "--scheduler", address],
                    _env(tmp_path / "cache"), timeout=60)
    assert time.monotonic() - start <= 30
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("lmul-hw: error: cannot reach the Dask scheduler at " + address), result.stderr
    assert not (tmp_path / "out").exists()


def test_a_malformed_scheduler_address_is_exit_2(tmp_path):
    result = _sweep([_spec(tmp_path, k="[1]"), "--out", tmp_path / "out", "--scheduler", "localhost:8786"],
                    _env(tmp_path / "cache"), timeout=60)
    assert result.returncode == 2 and "is not a scheduler address" in result.stderr


def _dask(args, env, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=log.parent, env=env, stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"))


def test_a_cluster_of_matching_workers_is_used_and_other_source_is_refused(tmp_path):
    cache = tmp_path / "cache"
    env = _env(cache)
    scheduler_file = tmp_path / "scheduler.json"
    procs = [_dask(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(scheduler_file)], env, tmp_path / "scheduler.log")]
    try:
        _wait_for(scheduler_file.exists, 60, "the scheduler")
        address = json.loads(scheduler_file.read_text())["address"]
        worker = ["worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1", "--no-dashboard"]
        procs.append(_dask(worker, env, tmp_path / "worker1.log"))
        spec = _spec(tmp_path, k="[1, 2]")
        ok = _sweep([spec, "--out", tmp_path / "out", "--scheduler", address], env)
        assert ok.returncode == 0, ok.stderr
        assert f"running on {address}" in ok.stderr
        assert [r["status"] for r in _rows(tmp_path / "out")] == ["ok"] * 3

        # a second worker whose lmul_hw differs by one comment
        other = tmp_path / "other"
        shutil.copytree(ROOT / "lmul_hw", other / "lmul_hw", ignore=shutil.ignore_patterns("__pycache__"))
        with open(other / "lmul_hw" / "formats.py", "a") as fh:
            fh.write("# changed on this worker\n")
        procs.append(_dask(worker, {**env, "PYTHONPATH": str(other)}, tmp_path / "worker2.log"))
        _wait_for(lambda: "Registered to" in (tmp_path / "worker2.log").read_text(), 60, "the second worker")
        spec = _spec(tmp_path, k="[3]", name="new.toml")           # a point not in the cache yet
        refused = _sweep([spec, "--out", tmp_path / "out2", "--scheduler", address], env)
        assert refused.returncode == 2, refused.stderr
        line = refused.stderr.strip().splitlines()[-1]
        assert line.startswith(f"lmul-hw: error: the workers of {address} run another lmul-hw than this client: ")
        assert " has source " in line and "(client: " in line
        assert not (tmp_path / "out2").exists()
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
