"""Layer 1: the validated configuration objects (DESIGN.md) and the checks of SPEC §2-§5."""

from __future__ import annotations

import json

import pytest

from lmul_hw.config import (CoreConfig, FPMulConfig, LMulConfig, config_from_json, core_unit,
                            default_offset_exp)
from lmul_hw.formats import get_format


# -- L-Mul defaults (SPEC §2): c = 2^(k - l(k)) -------------------------------------------------

@pytest.mark.parametrize("k,l", [(1, 1), (2, 2), (3, 3), (4, 3), (5, 4), (7, 4), (10, 4), (23, 4)])
def test_default_offset_exp_is_the_papers_rule(k, l):
    assert default_offset_exp(k) == l


@pytest.mark.parametrize("fmt,k,c", [("e4m3", 3, 1), ("e5m2", 2, 1), ("bf16", 7, 8), ("fp32", 23, 1 << 19),
                                     ("fp16", 10, 1 << 6), ("e4m3", 2, 1), ("e4m3", 1, 1), ("bf16", 4, 2),
                                     ("fp16", 5, 2)])
def test_default_offsets(fmt, k, c):
    cfg = LMulConfig(fmt, k=k)
    assert (cfg.k, cfg.offset, cfg.offset_exp) == (k, c, default_offset_exp(k))
    if k == get_format(fmt).man_bits:
        assert LMulConfig(fmt).offset == c and LMulConfig(fmt).k == k


def test_lmul_config_resolves_fields():
    cfg = LMulConfig("e4m3", k=2, offset_exp=0, out_fmt="e6m3", overflow="saturate", latency=2)
    assert cfg.fmt is get_format("e4m3") and cfg.out_fmt == get_format("e6m3")
    assert (cfg.k, cfg.offset, cfg.offset_exp, cfg.overflow, cfg.latency) == (2, 4, 0, "saturate", 2)
    # the constant of the one addition: (B_G - 2 B_F) * 2^k + c = (31 - 14) * 4 + 4
    assert cfg.bias_offset == 72
    assert LMulConfig("fp32").bias_offset == -0x3F780000      # the paper's PTX constant
    cal = LMulConfig("bf16", offset=37)
    assert (cal.offset, cal.offset_exp) == (37, None)
    assert LMulConfig("e4m3").out_fmt is get_format("e4m3")
    # names are derived from the configuration and differ between configurations
    names = {LMulConfig("e4m3").name, LMulConfig("e4m3", k=2).name, LMulConfig("e4m3", overflow="saturate").name,
             LMulConfig("e4m3", latency=1).name, LMulConfig("e4m3", out_fmt="e6m3").name, cal.name}
    assert len(names) == 6
    assert LMulConfig("e4m3", name="my_mul").name == "my_mul"


def test_offset_bounds_inclusive():
    assert LMulConfig("e4m3", offset=0).offset == 0
    assert LMulConfig("e4m3", offset=8).offset == 8
    assert LMulConfig("e4m3", offset_exp=0).offset == 8
    assert LMulConfig("e4m3", offset_exp=3).offset == 1
    assert LMulConfig("e4m3", k=1, offset=2).offset == 2


@pytest.mark.parametrize("kwargs,match", [
    (dict(fmt="e4m3", k=0), "k"),
    (dict(fmt="e4m3", k=4), "k"),
    (dict(fmt="e4m3", k=-1), "k"),
    (dict(fmt="fp32", k=24), "k"),
    (dict(fmt="e4m3", k=2.0), "k"),
    (dict(fmt="e4m3", k=True), "k"),
    (dict(fmt="fp16", out_fmt="e6m3"), "mantissa"),          # M_G = 3 < k = 10
    (dict(fmt="fp16", k=4, out_fmt="e6m3"), "mantissa"),
    (dict(fmt="e4m3", offset_exp=1, offset=2), "both"),
    (dict(fmt="e4m3", offset_exp=0, offset=0), "both"),
    (dict(fmt="e4m3", offset=-1), "offset"),
    (dict(fmt="e4m3", offset=9), "offset"),
    (dict(fmt="e4m3", k=2, offset=5), "offset"),
    (dict(fmt="e4m3", offset_exp=-1), "offset_exp"),
    (dict(fmt="e4m3", offset_exp=4), "offset_exp"),
    (dict(fmt="e4m3", k=1, offset_exp=2), "offset_exp"),
    (dict(fmt="e4m3", overflow="clamp"), "overflow"),
    (dict(fmt="e4m3", overflow=None), "overflow"),
    (dict(fmt="e4m3", latency=-1), "latency"),
    (dict(fmt="e4m3", latency=5), "latency"),
    (dict(fmt="e4m3", name="2fast"), "name"),
    (dict(fmt="e4m3", name="has space"), "name"),
    (dict(fmt="e4m3", name="a-b"), "name"),
    (dict(fmt="e4m4x"), "format"),
    (dict(fmt="fp8"), "format"),
    (dict(fmt="e11m52"), "32"),                               # operands are at most 32 bits
    (dict(fmt="e4m3", out_fmt="e1m3"), "exponent"),
])
def test_lmul_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LMulConfig(**kwargs)


@pytest.mark.parametrize("latency", [0, 1, 2, 3, 4])
def test_latency_range(latency):
    assert LMulConfig("e5m2", latency=latency).latency == latency
    assert FPMulConfig("e5m2", latency=latency).latency == latency


@pytest.mark.parametrize("kwargs,match", [
    (dict(fmt="e4m3", subnormals="daz"), "subnormals"),
    (dict(fmt="e4m3", subnormals=None), "subnormals"),
    (dict(fmt="e4m3", overflow="wrap"), "overflow"),
    (dict(fmt="e4m3", latency=5), "latency"),
    (dict(fmt="e4m3", latency=-1), "latency"),
    (dict(fmt="e4m3", name="1x"), "name"),
    (dict(fmt="e4m3", out_fmt="e4m3x"), "format"),
    (dict(fmt="e8m24"), "32"),
])
def test_fpmul_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FPMulConfig(**kwargs)


def test_fpmul_config_defaults():
    cfg = FPMulConfig("bf16")
    assert (cfg.out_fmt, cfg.subnormals, cfg.overflow, cfg.latency) == (get_format("bf16"), "full", "ieee", 0)
    assert FPMulConfig("e4m3", out_fmt="e6m7").out_fmt == get_format("e6m7")
    assert FPMulConfig("e4m3").name != FPMulConfig("e4m3", subnormals="ftz").name


# -- the core ------------------------------------------------------------------------------------

def test_core_unit_is_the_spec_product_format():
    u = core_unit("lmul", "e4m3")
    assert isinstance(u, LMulConfig) and u.out_fmt.name == "e6m3" and (u.k, u.offset) == (3, 1)
    u = core_unit("lmul", "bf16", k=4, offset=3)
    assert u.out_fmt.name == "e10m4" and (u.k, u.offset) == (4, 3)
    u = core_unit("fpmul", "e5m2", subnormals="ftz")
    assert isinstance(u, FPMulConfig) and u.out_fmt.name == "e7m5" and u.subnormals == "ftz"
    assert core_unit("fpmul", "fp16").out_fmt.name == "e7m21"


@pytest.mark.parametrize("args,kwargs,match", [
    (("mitchell", "e4m3"), {}, "mul"),
    (("lmul", "e8m7"), {}, "format"),
    (("lmul", "e3m4"), {}, "format"),
    (("fpmul", "e4m3"), dict(k=2), "L-Mul"),
    (("fpmul", "e4m3"), dict(offset=1), "L-Mul"),
    (("fpmul", "e4m3"), dict(offset_exp=1), "L-Mul"),
    (("lmul", "e4m3"), dict(subnormals="ftz"), "subnormals"),
    (("lmul", "e4m3"), dict(k=4), "k"),
    (("lmul", "e4m3"), dict(k=0), "k"),
    (("lmul", "e4m3"), dict(offset=1, offset_exp=1), "both"),
    (("fpmul", "e4m3"), dict(subnormals="none"), "subnormals"),
])
def test_core_unit_validation(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        core_unit(*args, **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(rows=0), "rows"), (dict(rows=33), "rows"), (dict(cols=0), "cols"), (dict(depth=0), "depth"),
    (dict(depth=65537), "depth"), (dict(acc="fp16"), "acc"), (dict(mul="exact"), "mul"),
    (dict(fmt="e3m4"), "format"), (dict(fmt="fp32"), "fp32 accumulation"), (dict(fmt="bf16"), "128"), (dict(name="core-1"), "name"),
    (dict(k=5), "k"), (dict(offset=1, offset_exp=1), "both"), (dict(mul="fpmul", k=2), "L-Mul"),
])
def test_core_config_validation(kwargs, match):
    base = dict(rows=4, cols=4, mul="lmul", fmt="e4m3", acc="exact", depth=64)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        CoreConfig(**base)


def test_core_config_fields():
    c = CoreConfig(2, 3, "lmul", "e5m2", "fp32", 16, k=1)
    assert (c.k, c.offset, c.offset_exp) == (1, 1, 1)
    assert c.product_fmt.name == "e7m1" and isinstance(c.unit, LMulConfig)
    f = CoreConfig(2, 3, "fpmul", "bf16", "fp32", 16)
    assert f.k is None and f.offset is None and f.product_fmt.name == "e10m15"
    assert CoreConfig(1, 1, "lmul", "bf16", "fp32", 65536).depth == 65536
    # acc_width grows with the depth's guard bits only
    assert CoreConfig(1, 1, "lmul", "e4m3", "exact", 1024).acc_width - \
        CoreConfig(1, 1, "lmul", "e4m3", "exact", 2).acc_width == 9
    assert c.name != CoreConfig(2, 3, "lmul", "e5m2", "fp32", 16).name


# -- JSON round trips ----------------------------------------------------------------------------

CONFIGS = [
    LMulConfig("e4m3"),
    LMulConfig("e4m3", k=2, offset_exp=0, out_fmt="e6m3", overflow="saturate", latency=3),
    LMulConfig("bf16", offset=37, latency=1, name="calibrated"),
    LMulConfig("fp32", k=23),
    LMulConfig("e5m2", k=1, offset=0, out_fmt="e4m3"),
    FPMulConfig("e4m3"),
    FPMulConfig("e5m2", out_fmt="e7m5", subnormals="ftz", overflow="saturate", latency=4, name="fp_x"),
    FPMulConfig("fp16", out_fmt="e4m3"),
    CoreConfig(4, 4, "lmul", "e4m3", "exact", 64),
    CoreConfig(2, 8, "lmul", "bf16", "fp32", 1024, k=3, offset=5, name="core_b"),
    CoreConfig(3, 1, "lmul", "fp16", "exact", 65536, k=10, offset_exp=2),
    CoreConfig(1, 32, "fpmul", "e5m2", "exact", 4096, subnormals="ftz"),
    CoreConfig(32, 1, "fpmul", "fp16", "fp32", 1),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_json_round_trip(cfg):
    text = cfg.to_json()
    assert isinstance(json.loads(text), dict) and json.loads(text)["type"] == type(cfg).__name__
    back = config_from_json(text)
    assert type(back) is type(cfg)
    assert back == cfg
    assert back.to_json() == text
    if isinstance(cfg, LMulConfig):
        assert (back.k, back.offset, back.offset_exp, back.bias_offset) == (cfg.k, cfg.offset, cfg.offset_exp,
                                                                            cfg.bias_offset)
    if isinstance(cfg, CoreConfig):
        assert back.unit == cfg.unit
        if cfg.acc == "exact":
            assert back.acc_width == cfg.acc_width


def test_json_is_canonical():
    # the same configuration, however it was spelled, serialises to the same bytes
    assert LMulConfig("e4m3").to_json() == LMulConfig("E4M3", k=3, offset_exp=3).to_json()
    assert FPMulConfig("fp16").to_json() == FPMulConfig(get_format("fp16"), out_fmt="fp16").to_json()


def test_configs_are_frozen():
    cfg = LMulConfig("e4m3")
    with pytest.raises(Exception):
        cfg.k = 2
