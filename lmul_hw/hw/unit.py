"""What the two multiplier units share: the ports of SPEC §5 and the pipeline cut into the datapath."""

from __future__ import annotations

from itertools import combinations

from amaranth.hdl import Const, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class Unit(wiring.Component):
    """A two-operand unit with ports ``a``, ``b`` (operand bits) and ``p`` (product bits).

    ``datapath`` describes the combinational logic once, marking its stage boundaries with ``stage``
    (decode, add or multiply, normalise, round; each with an estimated depth of the logic before it)
    and ending in the ``"out"`` boundary.  With ``latency`` N >= 1, ``p`` is registered and N - 1 of the
    other boundaries, chosen by ``balanced_cuts`` to even out the estimated depths, become register
    stages (beyond the datapath's boundaries, further output registers).  So ``p`` in cycle t + N
    belongs to the ``a``, ``b`` of cycle t.  Pipeline registers have no reset.  Latency 0 adds nothing.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({"a": In(cfg.fmt.width), "b": In(cfg.fmt.width), "p": Out(cfg.out_fmt.width)})

    def datapath(self, m: Module, a, b):
        raise NotImplementedError

    def plan(self) -> list[tuple[str, float]]:
        """The datapath's stage boundaries in order, each with the estimated depth of the logic before it
        (a dry run of ``datapath`` on a scratch module)."""
        self._cuts, self._plan, self.ops = set(), [], (self.a, self.b)
        scratch = Module()
        scratch._MustUse__silence = True
        self.datapath(scratch, self.a, self.b)
        plan, self._plan = self._plan, None
        return plan

    def cuts(self) -> tuple[str, ...]:
        """The boundaries that this latency registers, besides the output, in datapath order."""
        if not self.cfg.latency:
            return ()
        plan = self.plan()
        chosen = set(balanced_cuts(plan, self.cfg.latency - 1))
        return tuple(name for name, _ in plan if name in chosen)

    def elaborate(self, platform):
        m = Module()
        latency = self.cfg.latency
        self._cuts = set(self.cuts())
        self._plan, self.ops = None, (self.a, self.b)
        p = self.datapath(m, self.a, self.b)
        for stage in range(latency - len(self._cuts) if latency else 0):
            p = _register(m, p, f"p_q{stage}")
        m.d.comb += self.p.eq(p)
        return m

    def stage(self, m: Module, name: str, depth: float, **values):
        """The end of the datapath's stage ``name``, whose logic is about ``depth`` LUT levels deep: the
        ``values`` that live on, registered when this latency cuts here.  The operand bits ``self.ops``
        ride along every cut, so that the class flags are decoded from them where they are needed.
        Returns the values in order (one value alone)."""
        if self._plan is not None:
            self._plan.append((name, depth))
        elif name in self._cuts:
            values = {key: _register(m, v, f"{key}_{name}") for key, v in values.items()}
            self.ops = tuple(_register(m, v, f"{port}_{name}") for port, v in zip("ab", self.ops))
        out = tuple(values.values())
        return out[0] if len(out) == 1 else out


def balanced_cuts(plan: list[tuple[str, float]], count: int) -> tuple[str, ...]:
    """Which ``count`` boundaries of ``plan`` (``(name, depth of the logic before it)``, in order, the last
    one the output, always registered, never chosen) to register so that the deepest stage is as shallow
    as it can be; among equals, the one whose stages are most even (least sum of squared depths)."""
    names = [n for n, _ in plan[:-1]]
    count = min(count, len(names))

    def stages(chosen):
        out, depth = [], 0.0
        for name, d in plan:
            depth += d
            if name in chosen or name == plan[-1][0]:
                out.append(depth)
                depth = 0.0
        return max(out), sum(s * s for s in out)

    return min(combinations(names, count), key=stages)


def _register(m: Module, value, name: str):
    if isinstance(value, (int, Const)):
        return value
    value = Value.cast(value)
    reg = Signal(value.shape(), name=name, reset_less=True)
    m.d.sync += reg.eq(value)
    return reg
