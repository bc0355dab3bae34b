"""One protocol for every experiment and one driver for its command line.

An experiment is a module of its own science that provides (the :class:`Experiment` protocol):

- ``NAME``: the stem of its JSON file and progress bar (``eos`` -> ``OUT/eos.json``);
- ``Config``: a frozen dataclass. The fields declared with :func:`option` become command-line
  flags (``seed_offset`` -> ``--seed-offset``), parsed by the same :mod:`minstab._cli_args` types
  that check a ``--config`` TOML file, so a value means the same in both places. Cross-field rules
  live in ``Config.__post_init__`` as ``ValueError("steps: expected ...")``: a Python caller gets
  the ``ValueError``, the command line one line naming the flag and exit 2. ``Config.quick()``
  builds the reduced size of ``--quick`` / ``MINSTAB_QUICK=1``;
- ``run(config, *, out_dir=None, progress=None) -> Result`` (``out_dir``: where runs resume from;
  ``progress.update(n)`` once per finished unit of ``progress_total(config)``);
- ``outcomes(result) -> (checks, verdicts)`` (:mod:`minstab.experiments.outcomes`);
- ``table(result) -> str``, ``plot(result, out_dir) -> list[Path]``, ``to_json(result) -> dict``
  (the results; the driver adds the config, the checks and the verdicts).

Optional: ``progress_total(config) -> int`` (default: no known end), ``CONFIG_TYPES`` (parse
functions of fields whose check is not their annotation's), ``NOTE`` (a line printed under the
outcomes), ``JSON_NAME`` (the stem of the JSON file when it is not ``NAME``, e.g. ``sweep``
writes ``OUT/summary.json``), ``preflight(config)`` (what a run needs beyond its config, such as
a data set or an optional package, checked before anything runs: ``ValueError("dataset: ...")``
exits 2 naming the flag), ``save(result, out_dir) -> list[Path]`` (files besides the JSON and
the figures, e.g. per-run results that other commands read) and ``OWN_PROGRESS = True`` (``run``
draws its own progress bar, as a library call with one does: it gets ``progress=True``, or
``False`` under ``--quiet``, instead of the driver's bar).

Helpers shared by experiments: :func:`seed_tuple` and :func:`seed_count` (a ``seeds`` field held
as a tuple but given as a count on the command line), :func:`resume` and :func:`stored_key` (a
per-seed record stored under the output directory, reused when its config matches).

The driver (:func:`add_arguments`, :func:`config_from_args`, :func:`main`) does the rest for
every command alike: ``--out``, ``--config FILE`` (any ``Config`` field), ``--quick``, ``--quiet``,
the flags of the options, the order defaults < quick < TOML < flags, the precision of a
``dtype`` field, the progress bar, ``OUT/NAME.json`` with the ``config`` (first; ``to_json``
need not repeat it), ``checks`` and ``verdicts``, the figures, the printed table and outcomes,
and the exit status (1 exactly when a check fails).
A new experiment is one module plus one line in :data:`minstab.experiments.REGISTRY`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import re
import typing
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .._cli_args import (
    UsageError,
    choice,
    output_dir,
    quick_requested,
    read_toml,
    toml_values,
    type_of_field,
    unwrap_optional,
)

__all__ = [
    "Experiment",
    "add_arguments",
    "config_from_args",
    "flag_name",
    "main",
    "option",
    "options",
    "resume",
    "resume_seeds",
    "seed_count",
    "seed_tuple",
    "stored_key",
    "toml_types",
]


@runtime_checkable
class Experiment(Protocol):
    """What the driver needs from an experiment module (see the module docstring)."""

    NAME: str
    Config: type

    def run(self, config, *, out_dir=None, progress=None) -> Any: ...

    def outcomes(self, result) -> tuple[dict, dict]: ...

    def table(self, result) -> str: ...

    def plot(self, result, out_dir) -> list[Path]: ...

    def to_json(self, result) -> dict: ...


def option(default, help: str, *, type=None, choices=None, metavar: str | None = None,  # noqa: A002
           flag: str | None = None):  # fmt: skip
    """A ``Config`` field that is also a command-line flag.

    ``type`` parses the flag's text and the TOML value (default: by the field's annotation and
    name, :func:`minstab._cli_args.type_of_field`); ``choices`` restricts a string field (the
    flag and the TOML key alike). ``flag`` names the flag when it is not the field's name
    (``--factor`` for ``boost_factor``: a flag older than its field); the TOML key is the field.
    """
    if flag is not None and metavar is None:  # --factor FACTOR, not BOOST_FACTOR
        metavar = flag.lstrip("-").replace("-", "_").upper()
    meta = {"help": help, "type": type, "choices": choices, "metavar": metavar, "flag": flag}
    if isinstance(default, (list, dict, set)):
        raise TypeError("option: a mutable default; use a tuple")
    return dataclasses.field(default=default, metadata={"option": meta})


def options(config_cls) -> list[dataclasses.Field]:
    """The fields of ``config_cls`` declared with :func:`option`, in declaration order."""
    return [f for f in dataclasses.fields(config_cls) if "option" in f.metadata]


def flag_name(field: str) -> str:
    """``seed_offset`` -> ``--seed-offset``."""
    return "--" + field.replace("_", "-")


def _flag(f: dataclasses.Field) -> str:
    """The flag of an option field: its ``flag=``, else :func:`flag_name` of its name."""
    return f.metadata["option"].get("flag") or flag_name(f.name)


def _parse_type(exp, f: dataclasses.Field):
    meta = f.metadata["option"]
    custom = meta["type"] or getattr(exp, "CONFIG_TYPES", {}).get(f.name)
    if custom is not None:
        return custom
    hints = typing.get_type_hints(exp.Config)
    return type_of_field(f.name, hints[f.name]) or str


def _quick_help(exp) -> str:
    doc = (exp.Config.quick.__doc__ or "").strip().splitlines()
    return (
        doc[0].rstrip(".") if doc else "reduced sizes for tests and CI"
    ) + " (also MINSTAB_QUICK=1)"


def add_arguments(parser: argparse.ArgumentParser, exp) -> None:
    """The flags of ``exp``: its options, then ``--out``, ``--config``, ``--quick``, ``--quiet``."""
    full = exp.Config()
    quick = exp.Config.quick()
    hints = typing.get_type_hints(exp.Config)
    for f in options(exp.Config):
        meta = f.metadata["option"]
        d, q = getattr(full, f.name), getattr(quick, f.name)
        default = f"default {_show(d)}" + ("" if q == d else f", quick {_show(q)}")
        kw = dict(default=None, help=f"{meta['help']} ({default})")
        if unwrap_optional(hints[f.name]) is bool and meta["type"] is None:
            kw.update(action=argparse.BooleanOptionalAction)
        else:
            kw.update(type=_parse_type(exp, f), metavar=meta["metavar"])
            if meta["choices"] is not None:
                kw["choices"] = meta["choices"]
        parser.add_argument(_flag(f), dest=f.name, **kw)
    name = exp.NAME
    parser.add_argument("--out", type=output_dir, default=Path("minstab-out") / name,
                        help=f"output directory, runs resume from it (default minstab-out/{name})")  # fmt: skip
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="TOML file with any Config field (e.g. steps = 2000); flags override it")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help=_quick_help(exp))
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _show(v) -> str:
    if isinstance(v, tuple):
        return ",".join(_show(x) for x in v) or "none"
    return f"{v:g}" if isinstance(v, float) else str(v)


_FIELD_MESSAGE = re.compile(r"^([a-z_][a-z0-9_]*)(: .*)$", re.S)


def _usage_error(exp, e: Exception, *, from_file: set) -> UsageError:
    """A ``Config`` constructor's ``ValueError("steps: ...")`` as ``UsageError("--steps: ...")``.

    A field set in the TOML file and not by a flag is named as ``--config: steps``.
    """
    text = str(e)
    m = _FIELD_MESSAGE.match(text)
    if m is None or m.group(1) not in {f.name for f in dataclasses.fields(exp.Config)}:
        return UsageError(f"flags: {text}")
    field, rest = m.groups()
    flags = {f.name: _flag(f) for f in options(exp.Config)}
    flag = flags.get(field, flag_name(field))
    return UsageError((f"--config: {field}" if field in from_file else flag) + rest)


def config_from_args(exp, args) -> Any:
    """The ``exp.Config`` of a command line: defaults < quick < ``--config`` TOML < flags."""
    path = getattr(args, "config", None)
    table = {}
    if path is not None:
        table = toml_values(exp.Config, read_toml(path), types=toml_types(exp), path=path)
    given = {f.name: getattr(args, f.name) for f in options(exp.Config)
             if getattr(args, f.name, None) is not None}  # fmt: skip
    factory = exp.Config.quick if quick_requested(args) else exp.Config
    try:
        config = factory(**{**table, **given})
        if hasattr(exp, "preflight"):
            exp.preflight(config)
        return config
    except (TypeError, ValueError) as e:
        raise _usage_error(exp, e, from_file=set(table) - set(given)) from None


def toml_types(exp) -> dict:
    """Parse functions of the TOML keys whose check is not their annotation's (options, choices)."""
    types = dict(getattr(exp, "CONFIG_TYPES", {}))
    for f in options(exp.Config):
        meta = f.metadata["option"]
        if meta["type"] is not None:
            types.setdefault(f.name, meta["type"])
        elif meta["choices"] is not None:  # a TOML value obeys the flag's choices
            types.setdefault(f.name, choice(*meta["choices"]))
    return types


def seed_tuple(value) -> tuple[int, ...]:
    """Seeds given as a count ``N`` (seeds ``0 .. N-1``, as ``--seeds N``) or as the seeds.

    For ``Config.__post_init__`` of a ``seeds: tuple[int, ...]`` field whose flag is a count.

    >>> seed_tuple(3), seed_tuple([4, 7])
    ((0, 1, 2), (4, 7))
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return tuple(range(value))
    return tuple(int(s) for s in value)


def seed_count(minimum: int = 1):
    """The parse type of such a field: a count ``>= minimum`` (flag or TOML) or a TOML list of seeds.

    A count stays an ``int`` (within :data:`~minstab._cli_args.LIMITS` ``seeds``);
    :func:`seed_tuple` turns it into the seeds.
    """
    from .._cli_args import LIMITS, int_in_range
    from .._cli_args import seed as one_seed

    lim = LIMITS["seeds"]
    count = int_in_range(minimum, lim.maximum, estimate=lim.estimate)

    def parse(value):
        if isinstance(value, (list, tuple)):
            if not value:
                raise argparse.ArgumentTypeError("expected a non-empty list of seeds, got []")
            return tuple(one_seed(v) for v in value)
        return count(value)

    parse.__name__ = "seed_count"
    return parse


def stored_key(config, unit: int, *, drop=("seeds",), name: str = "seed") -> dict:
    """The fields a stored record of one seed (or run) must match to be reused, JSON-ready.

    Every field of ``config`` but ``drop`` (sizes that do not change the record), with
    ``name`` set to ``unit``.
    """
    from .._io import to_jsonable

    d = dataclasses.asdict(config)
    for k in drop:
        d.pop(k, None)
    d[name] = int(unit)
    return to_jsonable(d)


def resume(path, key: dict, compute, *, encode, decode) -> tuple[Any, bool]:
    """``(record, resumed)``: ``decode`` of the JSON at ``path`` if it was written for ``key``.

    Otherwise ``compute()``, written to ``path`` as ``{"config": key, **encode(record)}``
    (``path=None``: always computed, nothing written). A missing, torn or foreign file is
    computed again (:func:`minstab._io.read_stored`).
    """
    from .._io import read_stored, write_json

    stored = None if path is None else read_stored(path, key)
    if stored is not None:
        return decode(stored), True
    record = compute()
    if path is not None:
        write_json(path, {"config": key, **encode(record)})
    return record, False


def resume_seeds(seeds, out_dir, compute, *, key, encode, decode, resumed=None) -> list:
    """:func:`resume` for every seed: the record of seed ``s`` in ``out_dir/seeds/seed_s.json``.

    ``compute(s)`` makes one, ``key(s)`` is its stored key; ``resumed(s)`` is called for each
    record read back (e.g. to advance the progress bar by the units it skipped).
    """
    records = []
    for s in seeds:
        path = None if out_dir is None else Path(out_dir) / "seeds" / f"seed_{s}.json"
        record, loaded = resume(path, key(s), functools.partial(compute, s), encode=encode,
                                decode=decode)  # fmt: skip
        if loaded and resumed is not None:
            resumed(s)
        records.append(record)
    return records


@contextlib.contextmanager
def _precision(config):
    """``jax_enable_x64`` as the config's ``dtype`` field says (a TOML dtype holds too)."""
    dtype = getattr(config, "dtype", None)
    if dtype not in ("float32", "float64"):
        yield
        return
    import jax

    before = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", dtype == "float64")
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def main(exp, args) -> int:
    """Run ``exp`` from a parsed command line; print and write its results; the exit status."""
    from .._io import write_json
    from ..progress import ProgressBar
    from .outcomes import exit_status, format_outcomes
    from .outcomes import to_json as outcomes_json

    config = config_from_args(exp, args)
    out = Path(args.out)
    total = exp.progress_total(config) if hasattr(exp, "progress_total") else None
    draw, own = not getattr(args, "quiet", False), getattr(exp, "OWN_PROGRESS", False)
    with _precision(config):
        with ProgressBar(total, exp.NAME, enabled=draw and not own) as bar:
            result = exp.run(config, out_dir=out, progress=draw if own else bar)
        checks, verdicts = exp.outcomes(result)
        paths = [*(exp.save(result, out) if hasattr(exp, "save") else []), *exp.plot(result, out)]
        path = write_json(
            out / f"{getattr(exp, 'JSON_NAME', exp.NAME)}.json",
            {"config": config, **exp.to_json(result), **outcomes_json(checks, verdicts)},
        )
        print("\n" + exp.table(result))
    print(format_outcomes(checks, verdicts))
    if getattr(exp, "NOTE", None):
        print(f"  ({exp.NOTE})")
    print("\nwrote " + ", ".join(str(p) for p in [*paths, path]))
    return exit_status(checks)
