"""Command line: ``minstab sweep | reproduce NAME | predict | info``.

Argument parsing only; every number comes from the library. Each command is an experiment
module (``minstab.experiments.*``) run by the one driver of :mod:`minstab.experiments.base`
(its flags from the module's ``Config``), so new experiments never touch this file.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import platform
import sys

from ._cli_args import (
    EXTRAS,
    UsageError,
    check_config_file,
    check_sizes,
    missing_extra_message,
)

COMMANDS = {
    "sweep": ("minstab.experiments.sweep_1d", "main job: step-size sweep on embedded toy data"),
    "predict": ("minstab.experiments.predict", "smallest weighted curvature of any interpolant"),
}


def compilation_cache_dir() -> str | None:
    """Where the command line keeps JAX's persistent compilation cache (``None``: off).

    ``JAX_COMPILATION_CACHE_DIR`` wins when set; else ``MINSTAB_COMPILATION_CACHE`` (a folder,
    or ``0`` to turn the cache off); else ``$XDG_CACHE_HOME/minstab/jax`` (``~/.cache/...``).
    """
    import os

    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return os.environ["JAX_COMPILATION_CACHE_DIR"]
    where = os.environ.get("MINSTAB_COMPILATION_CACHE", "")
    if where.strip().lower() in ("0", "off", "false", "no"):
        return None
    if where:
        return where
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minstab", "jax")


def cpu_devices_from_env() -> int | None:
    """``MINSTAB_CPU_DEVICES``: CPU devices the command line asks JAX for (``None``: every core).

    Raises :class:`UsageError` when it is set to anything but a positive integer.
    """
    import os

    raw = os.environ.get("MINSTAB_CPU_DEVICES", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError(f"MINSTAB_CPU_DEVICES: expected a positive integer, got {raw!r}")
    return int(raw)


def _setup_devices(count: int | None) -> None:
    """Every core a CPU device, so that sweeps run a share of their runs on each.

    Only in a fresh process: called in-process where JAX has already started (tests, a notebook
    calling :func:`main`), the default (every core) gives way to the caller's devices, which
    ``minstab info`` prints; a count asked for by ``MINSTAB_CPU_DEVICES`` that JAX no longer
    can give is a :class:`UsageError`.
    """
    from .engine.devices import use_cpu_cores

    try:
        use_cpu_cores(count)
    except RuntimeError as e:  # JAX started before main()
        if count is not None:
            raise UsageError(f"MINSTAB_CPU_DEVICES: {e}") from e


def _setup_jax(dtype: str | None) -> None:
    import jax

    if dtype in (None, "float64"):
        jax.config.update("jax_enable_x64", True)
    # Most of a small job's wall time is XLA compilation (the default sweep: ~70 % on a cold
    # 2-core CPU); JAX's persistent cache makes every later run with the same shapes skip it.
    cache = compilation_cache_dir()
    if cache is not None and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def info() -> dict:
    """Devices, backend, precision and versions, as a dict."""
    import jax
    import jaxlib
    import numpy as np

    from . import __version__

    return {
        "minstab": __version__,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),
        "x64_enabled": bool(jax.config.jax_enable_x64),
        "default_float": str(jax.numpy.zeros(()).dtype),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "compilation_cache": compilation_cache_dir() or "off",
    }


def _cmd_info(args) -> int:
    for k, v in info().items():
        print(f"{k:>15}: {v}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``minstab sweep: --width: expected an integer``), exit 2."""

    def error(self, message):  # noqa: D102 - argparse API
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``minstab`` argument parser with one sub-parser per command."""
    from . import experiments

    parser = _Parser(
        prog="minstab",
        description="Minima stability of gradient descent for shallow ReLU networks.",
    )
    parser.add_argument("--version", action="version", version=f"minstab {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    p_info = sub.add_parser("info", help="devices, backend, precision, versions")
    p_info.set_defaults(func=_cmd_info, dtype="float64")
    for name, (mod_name, help_) in COMMANDS.items():
        _add_command(sub, name, mod_name, help_)
    p_rep = sub.add_parser("reproduce", help="reproduce a figure or experiment of the seed papers")
    rsub = p_rep.add_subparsers(dest="experiment", metavar="EXPERIMENT", parser_class=_Parser)
    for name, (mod_name, help_) in experiments.available().items():
        _add_command(rsub, name, mod_name, help_)
    p_rep.set_defaults(func=lambda a: _usage(p_rep))
    return parser


def _add_command(sub, name: str, mod_name: str, help_: str) -> None:
    """One sub-command whose flags, run and outputs are the experiment driver's."""
    from .experiments import base

    mod = importlib.import_module(mod_name)
    p = sub.add_parser(name, help=help_, description=mod.__doc__)
    base.add_arguments(p, mod)
    p.set_defaults(func=functools.partial(base.main, mod), _module=mod_name)


def check_arguments(args) -> None:
    """The checks every command's arguments pass before it runs (one path for all commands).

    Sizes within :data:`minstab._cli_args.LIMITS` (with the cost of larger ones in the
    message), numbers by name (:data:`~minstab._cli_args.VALUE_CHECKS`), ``--out`` a writable
    directory, and a ``--config`` TOML file against the module's ``Config`` (unknown keys,
    types, ranges, empty lists, each key parsed as the driver parses it:
    :func:`minstab.experiments.base.toml_types`). Raises :class:`UsageError`.
    """
    check_sizes(args)
    name = getattr(args, "_module", None)
    mod = importlib.import_module(name) if name else None
    if mod is not None:
        from .experiments.base import toml_types

        check_config_file(args, mod.Config, types=toml_types(mod))


def _version() -> str:
    """The installed distribution's version (importlib.metadata), without importing jax."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("minstab")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def _usage(parser) -> int:
    parser.print_help()
    return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``minstab`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    name = " ".join(v for v in (args.command, getattr(args, "experiment", None)) if v)
    try:
        check_arguments(args)  # every command, before any jax
        _setup_devices(cpu_devices_from_env())
    except UsageError as e:
        print(f"minstab {name}: {e}", file=sys.stderr)
        return 2
    _setup_jax(getattr(args, "dtype", None))
    try:
        return int(args.func(args) or 0)
    except UsageError as e:
        print(f"minstab {name}: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        # an optional dependency that the command did not check up front (it should, with
        # ``require_extra``): still one line naming the extra, not a traceback
        if (e.name or "").split(".")[0] not in EXTRAS:
            raise
        print(f"minstab {name}: {missing_extra_message(e.name)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
