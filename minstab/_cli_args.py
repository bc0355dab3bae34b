"""Argument types for the command line: bad values fail while argparse reads them.

Each function is an argparse ``type=``: it returns the parsed value or raises
``argparse.ArgumentTypeError`` with what was expected, and argparse prefixes the flag, so
``minstab sweep --width 0`` prints ``minstab sweep: argument --width: expected a positive
integer, got '0'`` and exits 2, before jax compiles anything. :func:`require_extra` does the same
for optional dependencies, naming the extra to install.

The same types check ``--config`` TOML values (they take TOML/Python values as well as
strings: an integer type refuses ``2.5`` and ``true``), so a key means what its flag means.
A command module uses them like this (flags that a config file may set default to ``None``,
so that a config value is used unless a flag overrides it explicitly)::

    def add_arguments(parser):
        a = parser.add_argument
        a("--steps", type=limited("steps"), default=None)   # bounded, cost in the message
        a("--seed", type=seed, default=None)                # 0 .. 2**32 - 1
        a("--eta", type=positive_float, default=None)
        a("--dtype", type=choice("float64", "float32"), default=None)
        a("--quiet", action="store_true", default=None)
        a("--out", type=output_dir, default=None)
        a("--config", type=existing_file, default=None)

    CONFIG_TYPES = {"dtype": choice("float64", "float32")}  # keys not checked by annotation

    def main(args):
        cfg = config_from_args(Config, args, ["steps", "seed", "eta", "dtype", "quiet", "out"],
                               types=CONFIG_TYPES)

:func:`minstab.cli.main` runs :func:`check_sizes` (every size-like option by name, see
:data:`LIMITS`, and numbers by name, :data:`VALUE_CHECKS`) and :func:`check_config_file` (the
``--config`` file against the module's ``Config`` and ``CONFIG_TYPES``) on every command before
it starts, so even a plain ``type=int`` flag is bounded.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import math
import numbers
import operator
import types as _types
import typing
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "UsageError",
    "quick_requested",
    "EXTRAS",
    "LIMITS",
    "MAX_RUNS",
    "MAX_SEED",
    "Limit",
    "boolean",
    "VALUE_CHECKS",
    "check_config_file",
    "check_sizes",
    "choice",
    "config_from_args",
    "eta_list",
    "existing_dir",
    "existing_file",
    "float_between",
    "explicit",
    "finite_float",
    "float_in_range",
    "float_list",
    "int_at_least",
    "int_in_range",
    "limited",
    "missing_extra_message",
    "momentum_beta",
    "nonnegative_float",
    "nonnegative_int",
    "output_dir",
    "positive_float",
    "positive_int",
    "read_toml",
    "require_extra",
    "seed",
    "string",
    "toml_values",
    "type_of_field",
    "unwrap_optional",
]


# optional top-level modules -> (distribution name, minstab extra that installs it)
class UsageError(ValueError):
    """A bad command line: ``main`` prints ``minstab CMD: message`` on one line and exits 2.

    Commands raise it (with the flag or file and what was expected) while they read their
    arguments, before any compilation. It lives here, with the argument types that raise it,
    so that the command line and the experiments import it without a cycle.
    """


EXTRAS = {
    "sklearn": ("scikit-learn", "data"),
    "scipy": ("scipy", "test"),
    "torch": ("torch", "bench"),
    "pyhessian": ("pyhessian", "bench"),
    "matfree": ("matfree", "bench"),
    "jupytext": ("jupytext", "notebooks"),
    "nbclient": ("nbclient", "notebooks"),
}


def _fail(expected: str, text) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")


def _int(value, expected: str) -> int:
    """An integer from a command-line string or a TOML/Python integer (never a bool or 2.5)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise _fail(expected, value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise _fail(expected, value) from None
    try:
        return operator.index(value)  # int, numpy integers
    except TypeError:
        raise _fail(expected, value) from None


def _float(value, expected: str) -> float:
    """A finite float from a string or a TOML/Python number (never a bool)."""
    if isinstance(value, bool):
        raise _fail(expected, value)
    if isinstance(value, str):
        try:
            v = float(value.strip())
        except ValueError:
            raise _fail(expected, value) from None
    elif isinstance(value, numbers.Real):
        v = float(value)
    else:
        raise _fail(expected, value)
    if not math.isfinite(v):
        raise _fail(expected, value)
    return v


def _duration(seconds: float) -> str:
    for unit, s in (("years", 3.15e7), ("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= s:
            return f"{seconds / s:.3g} {unit}"
    return f"{seconds:.2g} s"


def _bytes(n: float) -> str:
    for unit, s in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= s:
            return f"{n / s:.3g} {unit}"
    return f"{n:.0f} B"


def int_in_range(minimum: int, maximum: int | None = None, expected: str | None = None, *,
                 estimate=None):  # fmt: skip
    """An argparse type for integers in ``[minimum, maximum]`` (``maximum=None``: unbounded).

    It also takes TOML/Python integers (not bools, not 2.5), so one function checks a flag and
    the same key of a ``--config`` file. ``estimate(value) -> str`` words what a value above
    ``maximum`` would cost (memory, time); it is appended to the error message.

    >>> int_in_range(1, 10)("3")
    3
    """
    if expected is None:
        expected = (f"an integer >= {minimum}" if maximum is None
                    else f"an integer in [{minimum}, {maximum}]")  # fmt: skip

    def parse(text) -> int:
        v = _int(text, expected)
        if v < minimum:
            raise _fail(expected, text)
        if maximum is not None and v > maximum:
            why = f" ({estimate(v)})" if estimate is not None else ""
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}{why}")
        return v

    parse.__name__ = f"int_in_range_{minimum}_{maximum}"
    return parse


def int_at_least(minimum: int, expected: str | None = None, *, maximum: int | None = None):
    """An argparse type for integers ``>= minimum`` (e.g. ``int_at_least(2)`` for ``--n``).

    ``expected`` words the error message (default ``"an integer >= minimum"``).
    """
    return int_in_range(minimum, maximum, expected)


_positive_int = int_at_least(1, "a positive integer")
_nonnegative_int = int_at_least(0, "a non-negative integer")


def positive_int(text) -> int:
    """An integer >= 1 (``--width``, ``--steps``, ``--chunk-size``)."""
    return _positive_int(text)


def nonnegative_int(text) -> int:
    """An integer >= 0 (``--refine``, ``--warmup-steps``)."""
    return _nonnegative_int(text)


def float_in_range(lo: float = -math.inf, hi: float = math.inf, expected: str | None = None, *,
                   lo_open: bool = False, hi_open: bool = False):  # fmt: skip
    """An argparse type for finite floats in an interval (``lo_open``: ``> lo``, else ``>= lo``).

    >>> float_in_range(0, 1, lo_open=True)("0.5")
    0.5
    """
    if expected is None:
        left, right = ("(" if lo_open else "["), (")" if hi_open else "]")
        expected = f"a finite number in {left}{lo:g}, {hi:g}{right}"

    def parse(text) -> float:
        v = _float(text, expected)
        if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
            raise _fail(expected, text)
        return v

    parse.__name__ = "float_in_range"
    return parse


def finite_float(text) -> float:
    """Any finite number (no nan, inf)."""
    return _float(text, "a finite number")


def positive_float(text) -> float:
    """A finite number > 0 (``--tol``, a step size)."""
    expected = "a positive, finite number"
    v = _float(text, expected)
    if v <= 0:
        raise _fail(expected, text)
    return v


def nonnegative_float(text) -> float:
    """A finite number >= 0 (``--noise``)."""
    expected = "a non-negative, finite number"
    v = _float(text, expected)
    if v < 0:
        raise _fail(expected, text)
    return v


def float_between(low: float, high: float, expected: str | None = None):
    """An argparse type for finite numbers in the open interval ``(low, high)``.

    ``float_between(0, 2)`` reads ``--eta-rels 1.25``; ``expected`` words the error message
    (default ``"a number in (low, high)"``).
    """
    expected = expected or f"a number in ({low:g}, {high:g})"

    def parse(text) -> float:
        v = _float(text, expected)
        if not low < v < high:
            raise _fail(expected, text)
        return v

    parse.__name__ = f"float_between_{low:g}_{high:g}"
    return parse


def boolean(value) -> bool:
    """``true``/``false`` (a TOML bool, or those words on the command line); never ``"no"``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _fail("true or false", value)


def string(value) -> str:
    """A non-empty string (a TOML string: a number is not a string)."""
    if not isinstance(value, str) or not value.strip():
        raise _fail("a non-empty string", value)
    return value


def choice(*options: str):
    """An argparse/TOML type for one of ``options`` (e.g. ``choice("float64", "float32")``)."""
    expected = "one of " + ", ".join(map(repr, options))

    def parse(value) -> str:
        if not isinstance(value, str) or value.strip() not in options:
            raise _fail(expected, value)
        return value.strip()

    parse.__name__ = "choice"
    return parse


def momentum_beta(value) -> float:
    """A momentum parameter in [0, 1) (heavy ball's and Nesterov's beta; ``--beta``).

    >>> momentum_beta("0.9")
    0.9
    """
    return float_in_range(0.0, 1.0, "a momentum in [0, 1)", hi_open=True)(value)


# ----------------------------------------------------------------------------- size limits
# Upper bounds on sizes, so that a typo (an extra zero, ``2**70``) is refused while the arguments
# are read instead of hanging or being killed for memory. Each bound comes with the estimate of
# what a larger value would cost, printed in the message.

#: GD throughput used in the time estimates: ~3e5 net-steps/s, measured for the vmapped sweep
#: (n = 8-20, k = 64-200, float64) on a 2-core CPU (NOTES.md); a rough order of magnitude.
NET_STEPS_PER_S = 3e5
MAX_RUNS = 100_000  # step sizes (runs) of one sweep
MAX_STEPS = 10**8
MAX_WIDTH = 100_000
MAX_N = 100_000
MAX_SEEDS = 10_000
MAX_SEED = 2**32 - 1  # jax.random.key takes a 32-bit seed without x64


class Limit(NamedTuple):
    """Bounds of one size-like option and the words of its cost estimate."""

    minimum: int
    maximum: int
    estimate: object = None  # callable(value) -> str, or None


def _steps_cost(v: int) -> str:
    return (f"{v:.3g} GD steps take about {_duration(v / NET_STEPS_PER_S)} per run at the "
            f"~{NET_STEPS_PER_S:.0e} net-steps/s of a 2-core CPU")  # fmt: skip


def _width_cost(v: int) -> str:
    p = 3 * v + 2
    return (f"{p:.3g} parameters per net; a dense Hessian would need {_bytes(8.0 * p * p)} "
            f"and one GD step on 100 points {_bytes(8.0 * 100 * v)} of activations per run")  # fmt: skip


def _n_cost(v: int) -> str:
    return f"an n x n kernel of the curvature bounds would need {_bytes(8.0 * v * v)}"


def _runs_cost(v: int) -> str:
    return (f"{v:.3g} GD runs: the step sizes alone take {_bytes(8.0 * v)}, and at 1e5 steps "
            f"each the runs take about {_duration(v * 1e5 / NET_STEPS_PER_S)}")  # fmt: skip


def _seeds_cost(v: int) -> str:
    return f"{v:.3g} seeds: each is a whole run of the experiment"


def _seed_range(v: int) -> str:
    return "jax.random.key takes a 32-bit seed"


#: Bounds by option name (argparse ``dest`` and ``Config`` field). :func:`check_sizes` applies
#: them to every command's parsed arguments; :func:`toml_values` to ``--config`` keys.
LIMITS: dict[str, Limit] = {
    "steps": Limit(1, MAX_STEPS, _steps_cost),
    "width": Limit(1, MAX_WIDTH, _width_cost),
    "hidden": Limit(1, MAX_WIDTH, _width_cost),
    "n": Limit(1, MAX_N, _n_cost),
    "n_per_class": Limit(1, MAX_N, _n_cost),
    "seeds": Limit(1, MAX_SEEDS, _seeds_cost),
    "seed": Limit(0, MAX_SEED, _seed_range),
    "num_etas": Limit(1, MAX_RUNS, _runs_cost),
    "chunk_size": Limit(1, MAX_RUNS, _runs_cost),
    "directions": Limit(1, MAX_N, _n_cost),
    "offsets": Limit(1, MAX_N, _n_cost),
    "dim": Limit(1, MAX_N, lambda v: f"{v} input dimensions"),
    "log_every": Limit(0, MAX_STEPS, _steps_cost),
    "warmup_steps": Limit(0, MAX_STEPS, _steps_cost),
    "sweep_batch_sizes": Limit(1, MAX_N, _n_cost),
    "grid": Limit(1, 10_000, lambda v: f"{v} candidate knots per gap"),
    "refine": Limit(0, 30, lambda v: f"2**{v} grid points per gap"),
}


#: Checks of number-valued options by name, applied by :func:`check_sizes` to every command
#: (each item of a list): a step size is positive, a tolerance positive, a noise level >= 0.
VALUE_CHECKS: dict = {}


def limited(name: str, expected: str | None = None):
    """The argparse type of a size option named in :data:`LIMITS` (e.g. ``limited("steps")``)."""
    lim = LIMITS[name]
    return int_in_range(lim.minimum, lim.maximum, expected, estimate=lim.estimate)


def seed(text) -> int:
    """A random seed: an integer in ``[0, 2**32 - 1]`` (``--seed 2**70`` would overflow)."""
    return limited("seed")(text)


def eta_list(text) -> tuple[float, ...]:
    """Step sizes: a comma list ``'0.01,0.02'`` or geometric ``'LO:HI:NUM'`` (or a TOML list).

    ``LO:HI:NUM`` is ``numpy.geomspace(LO, HI, NUM)`` with finite ``0 < LO < HI`` and an integer
    ``1 <= NUM <= MAX_RUNS`` (``NUM = 1`` gives ``(LO,)``). Every value must be positive and
    finite. The result is a tuple of floats (hashable, JSON-serializable).

    >>> eta_list("0.1:10:3")
    (0.1, 1.0, 10.0)
    >>> eta_list("0.5, 0.25")
    (0.5, 0.25)
    """
    expected = "positive, finite step sizes 'ETA,ETA,...' or 'LO:HI:NUM'"
    if isinstance(text, (list, tuple)):
        return _positive_list(text, expected)
    s = str(text).strip()
    if ":" in s:
        return _geometric(s)
    cells = [c.strip() for c in s.split(",")]
    if not s or any(not c for c in cells):
        raise _fail(expected, text)
    return _positive_list(cells, expected, text)


def _positive_list(items, expected, text=None) -> tuple[float, ...]:
    text = list(items) if text is None else text
    if len(items) == 0:
        raise argparse.ArgumentTypeError(f"expected {expected}, got an empty list")
    if len(items) > MAX_RUNS:
        raise argparse.ArgumentTypeError(
            f"expected at most {MAX_RUNS} step sizes, got {len(items)} ({_runs_cost(len(items))})"
        )
    vals = tuple(_float(c, expected) for c in items)
    if any(v <= 0 for v in vals):
        raise _fail(expected, text)
    return vals


def _geometric(s: str) -> tuple[float, ...]:
    expected = f"'LO:HI:NUM' with finite 0 < LO < HI and an integer 1 <= NUM <= {MAX_RUNS}"
    parts = s.split(":")
    if len(parts) != 3:
        raise _fail(expected, s)
    lo, hi = (_float(v, expected) for v in parts[:2])
    num = _int(parts[2], expected)
    if not (0 < lo < hi) or num < 1:
        raise _fail(expected, s)
    if num > MAX_RUNS:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {s!r} ({_runs_cost(num)})")
    import numpy as np

    return tuple(float(v) for v in np.geomspace(lo, hi, num))


def float_list(item=finite_float, *, max_len: int = MAX_RUNS):
    """A non-empty list of numbers: a comma string or a TOML list, each checked by ``item``."""

    def parse(value) -> tuple:
        items = [c.strip() for c in value.split(",")] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or len(items) == 0:
            raise _fail("a non-empty list of numbers", value)
        if len(items) > max_len:
            raise argparse.ArgumentTypeError(f"expected at most {max_len} values, got {len(items)}")
        return tuple(item(v) for v in items)

    parse.__name__ = "float_list"
    return parse


def existing_file(text) -> Path:
    """A path to an existing regular file (``--data``, ``--config``)."""
    p = Path(text)
    if not p.is_file():
        why = "a directory" if p.is_dir() else "no such file"
        raise argparse.ArgumentTypeError(f"expected an existing file, got {str(text)!r} ({why})")
    return p


def existing_dir(text) -> Path:
    """A path to an existing directory (``--sweep``, ``--dataset DIR``)."""
    p = Path(text)
    if not p.is_dir():
        why = "a file" if p.exists() else "no such directory"
        raise argparse.ArgumentTypeError(
            f"expected an existing directory, got {str(text)!r} ({why})"
        )
    return p


def output_dir(text) -> Path:
    """A directory to write to: it may not exist yet, but neither it nor a parent is a file."""
    p = Path(text)
    if not str(text).strip():
        raise argparse.ArgumentTypeError("expected a directory to write results to, got ''")
    if p.exists() and not p.is_dir():
        raise argparse.ArgumentTypeError(
            f"expected a directory to write results to, got {str(text)!r} (an existing file)"
        )
    for parent in p.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(
                    f"expected a directory to write results to, got {str(text)!r} "
                    f"({str(parent)!r} is a file)"
                )
            break
    return p


VALUE_CHECKS.update({
    "out": output_dir,
    "etas": eta_list,
    "eta": positive_float,
    "eta_rels": positive_float,
    "tol": positive_float,
    "noise": nonnegative_float,
    "accuracies": nonnegative_float,
    "leaky_slope": float_in_range(0.0, 1.0, hi_open=True),
    "beta": momentum_beta,
})  # fmt: skip


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def quick_requested(args) -> bool:
    """Whether a command runs at its quick size: ``--quick``, or ``MINSTAB_QUICK=1`` (tests, CI)."""
    import os

    return bool(getattr(args, "quick", False)) or os.environ.get("MINSTAB_QUICK") == "1"


def check_sizes(args) -> None:
    """Check every size-like option of a parsed command line against :data:`LIMITS`.

    The one argument-checking path of :func:`minstab.cli.main`: it runs on every command's
    namespace after argparse (so a module whose flag is a plain ``type=int`` is still bounded),
    and checks ``out`` with :func:`output_dir` and ``etas`` with :func:`eta_list`. Raises
    ``UsageError("--steps: expected ...")`` naming the flag; ``None`` values (not given) pass.
    """
    ns = vars(args)
    for dest, lim in LIMITS.items():
        v = ns.get(dest)
        if v is None or callable(v):
            continue
        try:
            for item in v if isinstance(v, (list, tuple)) else (v,):
                int_in_range(lim.minimum, lim.maximum, estimate=lim.estimate)(item)
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"{_flag(dest)}: {e}") from None
    for dest, check in VALUE_CHECKS.items():
        v = ns.get(dest)
        if v is None or callable(v):
            continue
        try:
            if isinstance(v, (list, tuple)) and dest not in ("etas", "out"):
                for item in v:
                    check(item)
            else:
                check(v)
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"{_flag(dest)}: {e}") from None


def check_config_file(args, config_cls, *, types: dict | None = None, flag: str = "--config"):
    """Check a command's ``--config`` TOML file against its ``Config`` before anything runs.

    Called by :func:`minstab.cli.main` for every command whose module has a ``Config`` dataclass
    and a ``config`` argument (unknown keys, types, ranges, empty lists: :func:`toml_values`).
    Returns the parsed table (``{}`` without a file).
    """
    path = getattr(args, "config", None)
    if path is None or not dataclasses.is_dataclass(config_cls):
        return {}
    return toml_values(config_cls, read_toml(path, flag=flag), types=types, flag=flag, path=path)


# ----------------------------------------------------------------------------- TOML configs


def read_toml(path, *, flag: str = "--config") -> dict:
    """The table of a TOML file, or ``UsageError`` naming the flag and the file."""
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except IsADirectoryError:
        raise UsageError(f"{flag}: {str(path)!r} is a directory, not a TOML file") from None
    except OSError as e:
        raise UsageError(f"{flag}: cannot read {str(path)!r} ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(f"{flag}: {str(path)!r} is not valid TOML ({msg})") from None


def unwrap_optional(tp):
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, _types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def type_of_field(name: str, tp):
    """The parse function of a Config field: LIMITS by name, else its annotation."""
    tp = unwrap_optional(tp)
    if name in LIMITS and tp is int:
        return limited(name)
    if name == "seed":
        return seed
    if name == "etas":
        return eta_list
    if name == "out":
        return output_dir
    if tp is bool:
        return boolean
    if tp is int:
        return int_in_range(-(2**63), 2**63 - 1, "an integer")
    if tp is float:
        return finite_float
    if tp is str:
        return string
    if tp is tuple or typing.get_origin(tp) is tuple:
        items = [a for a in typing.get_args(tp) if a is not Ellipsis]
        item = _scalar_type(items[0]) if items and len(set(items)) == 1 else None
        return _list_of(item) if item is not None else _non_empty_list
    return None


def _scalar_type(tp):
    """The parse function of one item of a typed tuple (``tuple[int, ...]``), or None."""
    return {int: int_in_range(-(2**63), 2**63 - 1, "an integer"), float: finite_float,
            str: string, bool: _strict_bool}.get(tp)  # fmt: skip


def _strict_bool(value) -> bool:
    if not isinstance(value, bool):
        raise _fail("true or false", value)
    return value


def _list_of(item):
    def parse(value) -> tuple:
        if not isinstance(value, (list, tuple)) or len(value) == 0:
            raise _fail("a non-empty list", value)
        if item is finite_float or getattr(item, "__name__", "").startswith("int_in_range"):
            bad = [v for v in value if isinstance(v, (str, bool))]
            if bad:  # a TOML "1" or true is not a number
                raise _fail("a list of numbers", value)
        return tuple(item(v) for v in value)

    return parse


def _non_empty_list(value):
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        raise _fail("a non-empty list", value)
    return tuple(value)


def toml_values(cls, table: dict, *, types: dict | None = None, flag: str = "--config",
                path=None) -> dict:  # fmt: skip
    """Check a TOML table against the fields of the dataclass ``cls``; return the parsed values.

    Every key must be a field (unknown keys are listed with the known ones); every value is
    parsed by ``types[key]`` when given, else by the field's size limit (:data:`LIMITS`) or its
    annotation (``bool``: a TOML bool, not ``"no"``; ``int``: not 2.5; ``float``: finite; ``str``;
    ``tuple``: a non-empty list of numbers). A list must not be empty. The same argparse types
    check the flags and the keys, so a value means the same in both places.
    """
    where = f"{flag} {path}" if path is not None else flag
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise UsageError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"known: {', '.join(fields)}"
        )
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            raise UsageError(f"{where}: {key}: expected a value, got a table [{key}]")
        if isinstance(value, list) and not value:
            raise UsageError(f"{where}: {key}: expected a non-empty list, got []")
        custom = (types or {}).get(key)
        tp = unwrap_optional(hints.get(key))
        wrong = isinstance(value, str) or (custom is None and not isinstance(value, (int, float)))
        if tp in (int, float) and wrong:
            # a TOML string "10" is not the number 10 (argparse types, custom ones too, accept
            # strings: they also parse the command line)
            raise UsageError(f"{where}: {key}: expected a number, got {value!r}")
        if custom is None and tp is bool and not isinstance(value, bool):
            raise UsageError(f"{where}: {key}: expected true or false, got {value!r}")
        parse = custom or type_of_field(key, tp)
        try:
            out[key] = parse(value) if parse is not None else value
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"{where}: {key}: {e}") from None
    return out


def explicit(args, names) -> dict:
    """The options the user gave: ``{field: value}`` for ``names`` whose value is not ``None``.

    ``names`` is an iterable of argparse ``dest`` names equal to the field names, or a mapping
    ``{field: dest}``. Flags meant to be overridable by ``--config`` default to ``None`` (also
    ``action="store_true", default=None``), so that a config value is used unless a flag
    overrides it explicitly.
    """
    pairs = names.items() if isinstance(names, dict) else ((n, n) for n in names)
    return {f: getattr(args, d) for f, d in pairs if getattr(args, d, None) is not None}


def config_from_args(cls, args, names, *, types: dict | None = None, config: str = "config",
                     factory=None, base: dict | None = None):  # fmt: skip
    """Build the ``cls`` config: defaults < ``base`` < the ``--config`` TOML < explicit flags.

    ``names``: the flags that override config fields (see :func:`explicit`); ``types``: parse
    functions of fields whose check is not their annotation's; ``config``: the ``dest`` of the
    TOML file flag; ``factory``: builds the config from keywords (default ``cls``, e.g.
    ``Config.quick_config``). A ``ValueError``/``TypeError`` from the constructor becomes a
    ``UsageError``. Returns the config instance.
    """
    kw = dict(base or {})
    path = getattr(args, config, None)
    if path is not None:
        kw.update(toml_values(cls, read_toml(path), types=types, path=path))
    kw.update(explicit(args, names))
    try:
        return (factory or cls)(**kw)
    except (TypeError, ValueError) as e:
        raise UsageError(f"{'--config/flags' if path is not None else 'flags'}: {e}") from None


def require_extra(module: str, *, flag: str | None = None):
    """Import an optional dependency, or raise ``UsageError`` naming the extra to install.

    ``require_extra("sklearn", flag="--dataset digits")`` returns the module, or raises
    ``UsageError('--dataset digits: needs scikit-learn; pip install "minstab[data]"')``.
    Call it while reading the arguments, before any computation.
    """
    if importlib.util.find_spec(module) is None:
        raise UsageError(missing_extra_message(module, flag=flag))
    return importlib.import_module(module)


def missing_extra_message(module: str, *, flag: str | None = None) -> str:
    """One line: which distribution is missing and which ``minstab`` extra installs it."""
    top = module.split(".")[0]
    dist, extra = EXTRAS.get(top, (top, None))
    how = f'pip install "minstab[{extra}]"' if extra else f"pip install {dist}"
    return f"{flag + ': ' if flag else ''}needs {dist}, which is not installed; {how}"
