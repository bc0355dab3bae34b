"""One configuration object for every training loop: :class:`TrainConfig`.

``train``, ``sweep``, the command line and TOML files build it the same way: keyword options
(``steps=..., tol=...``) or a dict (``TrainConfig.from_dict``). It is a frozen dataclass, hence
hashable, and is passed to ``jax.jit`` as a static argument: changing an option recompiles,
changing a step size or the data does not.

Optimizers are optax factories with the step size injected (``optax.inject_hyperparams``):
``optimizer=optax.sgd``, ``functools.partial(optax.sgd, momentum=0.9)``, ``optax.adam``, ... or
one of the names ``"gd"`` (plain GD, the default: ``theta <- theta - eta grad L``, seed 004
eq. 19), ``"momentum"``, ``"nesterov"`` (``optax.sgd`` with ``momentum``) and ``"adam"``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable

from .._validate import check_bool, check_choice, check_int, check_real
from .loop import DIVERGE_ABOVE

__all__ = ["TrainConfig", "OPTIMIZERS", "LOG_SHARPNESS_METHODS", "train_config"]

OPTIMIZERS = ("gd", "momentum", "nesterov", "adam")
LOG_SHARPNESS_METHODS = ("auto", "gram", "lanczos", "power", "none", "preconditioned")


def _int(value, name: str, *, low: int) -> int:
    return check_int(value, name, minimum=low)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Static options of a training run (hashable; one compiled program per distinct value).

    Attributes
    ----------
    steps : number of iterations.
    log_every : record loss / sharpness every this many steps (0: no log).
    tol : convergence tolerance on the full-batch loss.
    patience : a run is converged (and frozen) once its loss has stayed below ``tol`` for this
        many further steps (0: at the first such step).
    diverge_above : a loss above this, or a non-finite one, marks the run diverged (frozen at
        the last parameters, ``diverged_at`` records the step).
    optimizer : ``"gd"`` (default), ``"momentum"``, ``"nesterov"``, ``"adam"`` or an optax
        factory ``f(learning_rate, ...) -> GradientTransformation``.
    momentum : momentum of the ``"momentum"`` and ``"nesterov"`` names.
    batch_size : mini-batch size B (None: full batch).
    replace : draw mini-batches with replacement.
    log_sharpness : ``"auto"`` (the closed-form Gram of eq. 28 for the shallow net, Lanczos
        otherwise), ``"gram"`` (shallow net only), ``"lanczos"`` (exact Hessian, warm-started
        from the previous log point), ``"power"`` (one Hessian-vector product per log point:
        power iteration continued across log points, the Rayleigh quotient logged; a lower
        bound of lambda_max that converges while the Hessian changes slowly, for cheap
        tracking, see ``benchmarks/tracking.py``), ``"none"`` or ``"preconditioned"`` (Adam,
        RMSProp or :func:`minstab.preconditioned_gd`: lambda_max(D^{-1/2} H D^{-1/2}) at the
        optimizer's current D, warm-started Lanczos; :func:`minstab.threshold_for` gives the
        threshold it is compared with, issue 33).
    log_curvature : also log the weighted curvature int |f''| g (shallow net only, eq. 21).
    boost_factor, boost_below : multiply eta by ``boost_factor`` once the loss is below
        ``boost_below`` (sticky; seed 004 Fig. 1 uses 3).
    negative_slope : leaky-ReLU slope of the shallow net (0: ReLU).
    lanczos_iters : Krylov dimension cap for ``log_sharpness="lanczos"`` (None: the default).
    data_batch_size : samples per batch of the full-batch loss, gradient and Hessian products
        (None: all at once): each is a sum over batches in one compiled loop, memory O(batch)
        (:mod:`minstab.engine.batching`; the loss must be a mean over samples). Not the SGD
        mini-batch (``batch_size``): with both, each mini-batch is processed in such batches.
    check_every : the steps run in blocks of this many, and the convergence / divergence
        flags are evaluated once per block from the block's recorded losses; a run that
        stopped inside a block replays its steps up to the stop, so every result
        (``converged_at``, ``diverged_at``, ``steps_run``, the frozen parameters) is exact at
        every value. 0 (default) chooses one (1 with a boost schedule).
    """

    steps: int
    log_every: int = 0
    tol: float = 1e-14
    patience: int = 0
    diverge_above: float = DIVERGE_ABOVE
    optimizer: str | Callable = "gd"
    momentum: float = 0.9
    batch_size: int | None = None
    replace: bool = True
    log_sharpness: str = "auto"
    log_curvature: bool = False
    boost_factor: float = 1.0
    boost_below: float = 0.0
    negative_slope: float = 0.0
    lanczos_iters: int | None = None
    check_every: int = 0
    data_batch_size: int | None = None

    def __post_init__(self):
        set_ = functools.partial(object.__setattr__, self)
        set_("steps", _int(self.steps, "steps", low=1))
        set_("log_every", _int(self.log_every, "log_every", low=0))
        if self.log_every > self.steps:
            raise ValueError(f"log_every must be <= steps ({self.steps}), got {self.log_every}")
        set_("patience", _int(self.patience, "patience", low=0))
        set_("check_every", _int(self.check_every, "check_every", low=0))
        for name in ("tol", "diverge_above", "boost_factor"):
            set_(name, check_real(getattr(self, name), name, lo=0.0, lo_open=True))
        set_("momentum", check_real(self.momentum, "momentum", lo=0.0, hi=1.0, hi_open=True))
        set_("boost_below", check_real(self.boost_below, "boost_below", lo=0.0))
        set_("negative_slope",
             check_real(self.negative_slope, "negative_slope", lo=0.0, hi=1.0, hi_open=True))  # fmt: skip
        if self.batch_size is not None:
            set_("batch_size", _int(self.batch_size, "batch_size", low=1))
        if self.data_batch_size is not None:
            set_("data_batch_size", _int(self.data_batch_size, "data_batch_size", low=1))
        if self.lanczos_iters is not None:
            set_("lanczos_iters", _int(self.lanczos_iters, "lanczos_iters", low=1))
        check_bool(self.replace, "replace")  # "no" would mean True
        check_bool(self.log_curvature, "log_curvature")
        set_("replace", bool(self.replace))
        set_("log_curvature", bool(self.log_curvature))
        check_choice(self.log_sharpness, "log_sharpness", LOG_SHARPNESS_METHODS)
        if isinstance(self.optimizer, str):
            check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        elif not callable(self.optimizer):
            raise ValueError(
                f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))} or an optax factory "
                f"(a callable taking learning_rate), got {self.optimizer!r}"
            )
        else:
            _check_factory(self.optimizer)

    @classmethod
    def from_dict(cls, options: dict) -> TrainConfig:
        """Build from a dict (e.g. a TOML table); unknown keys raise ``ValueError`` naming them."""
        return train_config(**options)

    def to_dict(self) -> dict:
        """JSON-ready dict; an optimizer factory is written as its qualified name and arguments."""
        d = dataclasses.asdict(self)
        d["optimizer"] = describe(self.optimizer)
        if d["data_batch_size"] is None:  # absent as before: stored sweeps' digests still match
            del d["data_batch_size"]
        return d

    @property
    def full_batch(self) -> bool:
        """Whether each step uses every training point (plain GD or an optax method)."""
        return self.batch_size is None

    @property
    def plain_gd(self) -> bool:
        """``theta <- theta - eta g`` without an optax state."""
        return isinstance(self.optimizer, str) and self.optimizer == "gd"

    def optimizer_factory(self) -> Callable:
        """The optax factory (``learning_rate`` is injected by the training loop)."""
        import optax

        if not isinstance(self.optimizer, str):
            return self.optimizer
        if self.optimizer == "momentum":
            return functools.partial(optax.sgd, momentum=self.momentum)
        if self.optimizer == "nesterov":
            return functools.partial(optax.sgd, momentum=self.momentum, nesterov=True)
        if self.optimizer == "adam":
            return optax.adam
        raise ValueError("optimizer 'gd' has no optax factory (it is the plain GD update)")


def _check_factory(factory) -> None:
    target = factory.func if isinstance(factory, functools.partial) else factory
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # builtins without a signature: trust the caller
        return
    if "learning_rate" not in sig.parameters and not any(
        p.kind is p.VAR_KEYWORD for p in sig.parameters.values()
    ):
        raise ValueError(
            f"optimizer must be an optax factory taking learning_rate (e.g. optax.sgd), got "
            f"{describe(factory)}"
        )


def describe(obj) -> str:
    """A stable, process-independent description of an option (names, not memory addresses)."""
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, functools.partial):
        args = [repr(a) for a in obj.args] + [f"{k}={v!r}" for k, v in obj.keywords.items()]
        return f"{describe(obj.func)}({', '.join(args)})"
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return f"{getattr(obj, '__module__', '?')}.{name}"


def train_config(config: TrainConfig | None = None, **options) -> TrainConfig:
    """``config`` with ``options`` replaced, or ``TrainConfig(**options)``; the one constructor.

    ``train(..., steps=100, tol=1e-9)`` and ``train(..., config=TrainConfig(steps=100,
    tol=1e-9))`` build the same object. Unknown options raise ``ValueError`` naming them.
    """
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(
            f"unknown training option(s) {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(sorted(names))}"
        )
    if config is None:
        if "steps" not in options:
            raise ValueError("steps is required (the number of iterations)")
        return TrainConfig(**options)
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    return dataclasses.replace(config, **options) if options else config
