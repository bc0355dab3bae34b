"""The reusable argument types of minstab/_cli_args.py (flags and TOML keys alike)."""

import argparse
import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minstab import cli
from minstab._cli_args import (
    LIMITS,
    MAX_RUNS,
    MAX_SEED,
    boolean,
    check_sizes,
    choice,
    config_from_args,
    eta_list,
    float_in_range,
    float_list,
    int_in_range,
    output_dir,
    read_toml,
    seed,
    toml_values,
)


@dataclasses.dataclass(frozen=True)
class Cfg:
    steps: int = 10
    seed: int = 0
    tol: float = 1e-8
    dtype: str = "float64"
    quiet: bool = False
    etas: tuple | None = None
    out: str = "out"

    def __post_init__(self):
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")


def test_int_in_range_bounds_and_estimate():
    f = int_in_range(1, 100, estimate=lambda v: f"{v} is a lot")
    assert f("1") == 1 and f(100) == 100
    for bad in ["0", "101", "2.5", "1e3", "x", "", True, 2.5, None]:
        with pytest.raises(argparse.ArgumentTypeError, match="expected an integer in"):
            f(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="101 is a lot"):
        f("101")


def test_seed_fits_jax():
    assert seed("0") == 0 and seed(str(MAX_SEED)) == MAX_SEED
    for bad in [str(2**70), "-1", "2**70"]:
        with pytest.raises(argparse.ArgumentTypeError):
            seed(bad)


def test_float_in_range_and_bool_and_choice():
    f = float_in_range(0, 1, lo_open=True)
    assert f("1") == 1.0 and f(0.5) == 0.5
    for bad in ["0", "1.5", "nan", "inf", True]:
        with pytest.raises(argparse.ArgumentTypeError, match=r"\(0, 1\]"):
            f(bad)
    assert boolean(True) is True and boolean("false") is False
    for bad in ["no", "yes", 1, 0, "", None]:
        with pytest.raises(argparse.ArgumentTypeError, match="true or false"):
            boolean(bad)
    assert choice("a", "b")("b") == "b"
    with pytest.raises(argparse.ArgumentTypeError, match="one of 'a', 'b'"):
        choice("a", "b")("c")


def test_lists_bounded_and_non_empty():
    assert eta_list([0.1, 1]) == (0.1, 1.0)
    assert float_list()("1, 2") == (1.0, 2.0)
    for bad in [[], [0.1, -1], [0.1, "x"], [True]]:
        with pytest.raises(argparse.ArgumentTypeError):
            eta_list(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="days"):
        eta_list(f"0.1:0.2:{10 * MAX_RUNS}")
    with pytest.raises(argparse.ArgumentTypeError, match="non-empty"):
        float_list()([])


def test_output_dir(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    assert output_dir(str(tmp_path / "new" / "dir")) == tmp_path / "new" / "dir"
    with pytest.raises(argparse.ArgumentTypeError, match="an existing file"):
        output_dir(str(f))
    with pytest.raises(argparse.ArgumentTypeError, match="is a file"):
        output_dir(str(f / "sub"))


def test_check_sizes_names_the_flag():
    ns = argparse.Namespace(steps=10**11, width=None, out=None)
    with pytest.raises(cli.UsageError, match=r"^--steps: .*days per run"):
        check_sizes(ns)
    check_sizes(argparse.Namespace(steps=10, seed=0, n_per_class=5, func=print))
    with pytest.raises(cli.UsageError, match="^--n-per-class"):
        check_sizes(argparse.Namespace(n_per_class=0))
    assert set(LIMITS) >= {"steps", "width", "n", "seeds", "seed"}


def _toml(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("stepz = 3", "unknown key stepz"),
        ("steps = 2.5", "steps: expected"),
        ("steps = 0", "steps: expected"),
        ("steps = 100000000000", "days per run"),
        ('steps = "10"', "steps: expected"),
        ("seed = -1", "seed: expected"),
        ('quiet = "no"', "quiet: expected true or false"),
        ("tol = nan", "tol: expected a finite number"),
        ("etas = []", "etas: expected a non-empty list"),
        ("etas = [0.1, -0.2]", "etas: expected positive"),
        ("dtype = 32", "dtype: expected a non-empty string"),
        ("[steps]\na = 1", "steps: expected a value"),
    ],
)
def test_toml_values_rejects(tmp_path, text, names):
    with pytest.raises(cli.UsageError, match=names):
        toml_values(Cfg, read_toml(_toml(tmp_path, text)), path="c.toml")


def test_read_toml_errors(tmp_path):
    with pytest.raises(cli.UsageError, match="not valid TOML"):
        read_toml(_toml(tmp_path, "steps = = 3"))
    with pytest.raises(cli.UsageError, match="cannot read"):
        read_toml(tmp_path / "missing.toml")
    with pytest.raises(cli.UsageError, match="is a directory"):
        read_toml(tmp_path)


def test_config_value_used_unless_a_flag_overrides_it(tmp_path):
    path = _toml(tmp_path, 'dtype = "float32"\nsteps = 7\netas = [0.1, 0.2]')
    ns = argparse.Namespace(config=path, steps=None, dtype=None, etas=None, quiet=None)
    cfg = config_from_args(Cfg, ns, ["steps", "dtype", "etas", "quiet"])
    assert (cfg.dtype, cfg.steps, cfg.etas, cfg.quiet) == ("float32", 7, (0.1, 0.2), False)
    ns.steps, ns.quiet = 9, True
    cfg = config_from_args(Cfg, ns, ["steps", "dtype", "etas", "quiet"])
    assert (cfg.dtype, cfg.steps, cfg.quiet) == ("float32", 9, True)
    bad = argparse.Namespace(config=_toml(tmp_path, 'dtype = "float16"'))
    with pytest.raises(cli.UsageError, match="dtype must be"):
        config_from_args(Cfg, bad, [])


VALUES = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.booleans(),
                   st.text(max_size=4), st.lists(st.floats(), max_size=3))  # fmt: skip


@settings(deadline=None, max_examples=200)
@given(steps=VALUES, quiet=VALUES, tol=VALUES)
def test_toml_values_accepts_exactly_the_typed_values(steps, quiet, tol):
    """A key is accepted iff its value has the field's type and range; never coerced."""
    from minstab._cli_args import MAX_STEPS

    ok_steps = type(steps) is int and 1 <= steps <= MAX_STEPS
    ok_quiet = type(quiet) is bool
    ok_tol = type(tol) in (int, float) and math.isfinite(tol)
    table = {"steps": steps, "quiet": quiet, "tol": tol}
    if ok_steps and ok_quiet and ok_tol:
        assert toml_values(Cfg, table) == {"steps": steps, "quiet": quiet, "tol": float(tol)}
    else:
        with pytest.raises(cli.UsageError, match="^--config: (steps|quiet|tol): expected"):
            toml_values(Cfg, table)


@dataclasses.dataclass(frozen=True)
class Lists:
    cases: tuple[str, ...] = ("a",)
    ratios: tuple[int, ...] = (16,)
    widths: tuple = (16, 64)


def test_typed_tuples():
    """A list key is checked item by item by its annotation; strings stay strings."""
    got = toml_values(Lists, {"cases": ["iso", "teacher"], "ratios": [1, 2], "widths": [4]})
    assert got == {"cases": ("iso", "teacher"), "ratios": (1, 2), "widths": (4,)}
    for bad in [{"cases": [1]}, {"ratios": [1.5]}, {"ratios": ["1"]}, {"widths": []}]:
        with pytest.raises(cli.UsageError, match=f"^--config: {next(iter(bad))}: expected"):
            toml_values(Lists, bad)
