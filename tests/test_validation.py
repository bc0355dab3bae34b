"""Every bad argument of the public API is named before any computation (issue 30).

A table of invalid calls of the shallow-net and any-model functions: each raises ``ValueError``
or ``TypeError`` whose message names the argument, so no NaN, no truncated count and no wrong
answer comes back. Under ``jit`` the solvers report (``converged=False``) instead. The
validators themselves (``minstab._validate`` and ``minstab._cli_args``) get property tests.
"""

import argparse
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minstab as ms
from minstab import _cli_args as ca
from minstab import _validate as v
from tests import model_zoo

K = jax.random.key(0)
P = ms.init_shallow(K, 1, 8, dtype=jnp.float64, knot_range=(-1, 1))
x = jnp.linspace(-1.0, 1.0, 6)
y = jnp.sin(3 * x)
X1 = x[:, None]
apply, MP, MX, MY = model_zoo.problem("mlp", K, interpolating=False)
nan = float("nan")
A = jnp.eye(4)


def big_model(p, x):
    return x[:, :2] + 0 * jnp.sum(p["w"])


def mv(v):
    return 2.0 * v


BAD_CALLS = [
    ("init_shallow width=2.5", lambda: ms.init_shallow(K, 1, 2.5), "width"),
    ("init_shallow width=0", lambda: ms.init_shallow(K, 1, 0), "width"),
    ("init_shallow width=True", lambda: ms.init_shallow(K, 1, True), "width"),
    ("init_shallow in_dim=0", lambda: ms.init_shallow(K, 0, 8), "in_dim"),
    (
        "init_shallow knot_range reversed",
        lambda: ms.init_shallow(K, 1, 8, knot_range=(1, -1)),
        "knot_range",
    ),
    (
        "init_shallow knot_range nan",
        lambda: ms.init_shallow(K, 1, 8, knot_range=(0, nan)),
        "knot_range",
    ),
    (
        "init_shallow output_scale nan",
        lambda: ms.init_shallow(K, 1, 8, output_scale=nan),
        "output_scale",
    ),
    ("init_shallow scheme", lambda: ms.init_shallow(K, 1, 8, scheme="foo"), "scheme"),
    ("init_shallow key int", lambda: ms.init_shallow(3, 1, 8), "key"),
    ("init_shallow width 1e12", lambda: ms.init_shallow(K, 1, 10**12), "width"),
    (
        "sharpness negative_slope nan",
        lambda: ms.sharpness(P, x, y, negative_slope=nan),
        "negative_slope",
    ),
    ("sharpness method", lambda: ms.sharpness(P, x, y, method="x"), "method"),
    (
        "sharpness num_iters 2.5",
        lambda: ms.sharpness(P, x, y, method="lanczos", num_iters=2.5),
        "num_iters",
    ),
    (
        "sharpness num_iters 0",
        lambda: ms.sharpness(P, x, y, method="lanczos", num_iters=0),
        "num_iters",
    ),
    ("sharpness tol -1", lambda: ms.sharpness(P, x, y, method="lanczos", tol=-1.0), "tol"),
    ("sharpness full_output yes", lambda: ms.sharpness(P, x, y, full_output="yes"), "full_output"),
    ("sharpness x/y mismatch", lambda: ms.sharpness(P, x[:3], y), "y"),
    ("sharpness y nan", lambda: ms.sharpness(P, x, y * nan), "y"),
    ("sharpness v0 shape", lambda: ms.sharpness(P, x, y, method="lanczos", v0=jnp.ones(3)), "v0"),
    ("weighted_curvature rtol nan", lambda: ms.weighted_curvature(P, x, rtol=nan), "rtol"),
    ("weighted_curvature rtol -1", lambda: ms.weighted_curvature(P, x, rtol=-1.0), "rtol"),
    ("weight_1d t nan", lambda: ms.weight_1d(nan, x), "t"),
    ("weight_1d x nan", lambda: ms.weight_1d(0.0, x.at[0].set(nan)), "x_train"),
    (
        "theorem2_delta num_knots -3",
        lambda: ms.theorem2_delta(P, x, 0.1, num_knots=-3),
        "num_knots",
    ),
    (
        "theorem2_delta num_knots 2.5",
        lambda: ms.theorem2_delta(P, x, 0.1, num_knots=2.5),
        "num_knots",
    ),
    ("theorem2_delta eta -0.1", lambda: ms.theorem2_delta(P, x, -0.1), "eta"),
    ("theorem1_budget eta 0", lambda: ms.theorem1_budget(0.0), "eta"),
    ("theorem1_budget eta nan", lambda: ms.theorem1_budget(nan), "eta"),
    ("population_weight_1d dist", lambda: ms.population_weight_1d(x, "foo"), "dist"),
    ("sharpness_lower_bound x nan", lambda: ms.sharpness_lower_bound(P, x * nan), "x_train"),
    (
        "weight chunk_size 0",
        lambda: ms.weight(jnp.ones((2, 1)), jnp.zeros(2), X1, chunk_size=0),
        "chunk_size",
    ),
    ("permute duplicate", lambda: ms.permute(P, jnp.array([0, 0, 1, 2, 3, 4, 5, 6])), "perm"),
    ("permute length", lambda: ms.permute(P, jnp.array([0, 1])), "perm"),
    ("permute float", lambda: ms.permute(P, jnp.arange(8.0)), "perm"),
    ("rescale alpha negative", lambda: ms.rescale(P, -jnp.ones(8)), "alpha"),
    ("rescale alpha shape", lambda: ms.rescale(P, jnp.ones(3)), "alpha"),
    ("unflatten width 2.5", lambda: ms.unflatten(ms.flatten(P), 2.5, 1), "width"),
    ("unflatten theta length", lambda: ms.unflatten(jnp.ones(5), 8, 1), "theta"),
    ("num_params width -1", lambda: ms.num_params(-1, 1), "width"),
    ("forward negative_slope nan", lambda: ms.forward(P, x, negative_slope=nan), "negative_slope"),
    ("forward x 3-d", lambda: ms.forward(P, jnp.ones((2, 2, 1))), "x"),
    ("TrainConfig replace no", lambda: ms.TrainConfig(steps=10, replace="no"), "replace"),
    ("TrainConfig steps 2.5", lambda: ms.TrainConfig(steps=2.5), "steps"),
    ("TrainConfig tol nan", lambda: ms.TrainConfig(steps=10, tol=nan), "tol"),
    (
        "TrainConfig log_curvature str",
        lambda: ms.TrainConfig(steps=10, log_curvature="yes"),
        "log_curvature",
    ),
    ("TrainConfig momentum nan", lambda: ms.TrainConfig(steps=10, momentum=nan), "momentum"),
    ("train eta nan", lambda: ms.train(P, x, y, nan, steps=10), "eta"),
    ("train steps -1", lambda: ms.train(P, x, y, 0.1, steps=-1), "steps"),
    ("train steps 1e12", lambda: ms.train(P, x, y, 0.1, steps=10**12, log_every=1), "steps"),
    ("train bad option", lambda: ms.train(P, x, y, 0.1, steps=10, stepz=3), "stepz"),
    (
        "sweep chunk_size 2.5",
        lambda: ms.sweep(P, x, y, [0.1], chunk_size=2.5, steps=10, progress=False),
        "chunk_size",
    ),
    ("sweep etas empty", lambda: ms.sweep(P, x, y, [], steps=10, progress=False), "etas"),
    ("sweep etas nan", lambda: ms.sweep(P, x, y, [0.1, nan], steps=10, progress=False), "etas"),
    ("sweep seed -1", lambda: ms.sweep(P, x, y, [0.1], seed=-1, steps=10, progress=False), "seed"),
    (
        "sweep seed 2.5",
        lambda: ms.sweep(P, x, y, [0.1], seed=2.5, steps=10, progress=False),
        "seed",
    ),
    ("sweep progress str", lambda: ms.sweep(P, x, y, [0.1], steps=10, progress="no"), "progress"),
    (
        "sweep layout",
        lambda: ms.sweep(P, x, y, [0.1], steps=10, layout="x", progress=False),
        "layout",
    ),
    (
        "sweep out_dir file",
        lambda: ms.sweep(P, x, y, [0.1], steps=10, out_dir="/etc/passwd", progress=False),
        "out_dir",
    ),
    (
        "hessian_trace num_samples 1e9",
        lambda: ms.hessian_trace(P, x, y, key=K, num_samples=10**9),
        "num_samples",
    ),
    (
        "hessian_trace num_samples 0",
        lambda: ms.hessian_trace(P, x, y, key=K, num_samples=0),
        "num_samples",
    ),
    (
        "hessian_trace method",
        lambda: ms.hessian_trace(P, x, y, key=K, num_samples=3, method="foo"),
        "method",
    ),
    ("hessian_trace key int", lambda: ms.hessian_trace(P, x, y, key=3, num_samples=3), "key"),
    ("hessian_eigenvalues k 0", lambda: ms.hessian_eigenvalues(P, x, y, k=0), "k"),
    ("hessian_eigenvalues k 2.5", lambda: ms.hessian_eigenvalues(P, x, y, k=2.5), "k"),
    ("hessian_eigenvalues k > dim", lambda: ms.hessian_eigenvalues(P, x, y, k=1000), "k"),
    (
        "hessian_eigenvalues which",
        lambda: ms.hessian_eigenvalues(P, x, y, k=1, which="mid"),
        "which",
    ),
    (
        "spectral_density num_probes 0",
        lambda: ms.spectral_density(P, x, y, key=K, num_probes=0),
        "num_probes",
    ),
    (
        "spectral_density num_iters 1e9",
        lambda: ms.spectral_density(P, x, y, key=K, num_iters=10**9),
        "num_iters",
    ),
    ("eigh_dense nan", lambda: ms.eigh_dense(A.at[0, 0].set(nan)), "matrix"),
    ("eigh_dense nonsym", lambda: ms.eigh_dense(A.at[0, 1].set(1.0)), "matrix"),
    ("eigh_dense k 0", lambda: ms.eigh_dense(A, k=0), "k"),
    ("eigh_dense k 5", lambda: ms.eigh_dense(A, k=5), "k"),
    ("eigh_dense which", lambda: ms.eigh_dense(A, which="x"), "which"),
    ("lanczos v0 zero", lambda: ms.lanczos(mv, jnp.zeros(4)), "v0"),
    ("lanczos v0 nan", lambda: ms.lanczos(mv, jnp.ones(4) * nan), "v0"),
    ("lanczos num_iters 2.5", lambda: ms.lanczos(mv, jnp.ones(4), num_iters=2.5), "num_iters"),
    ("lanczos tol nan", lambda: ms.lanczos(mv, jnp.ones(4), tol=nan), "tol"),
    ("lanczos matvec", lambda: ms.lanczos("mv", jnp.ones(4)), "matvec"),
    (
        "lanczos_tridiagonal num_iters 0",
        lambda: ms.lanczos_tridiagonal(mv, jnp.ones(4), num_iters=0),
        "num_iters",
    ),
    (
        "power_iteration num_iters 0",
        lambda: ms.power_iteration(mv, jnp.ones(4), num_iters=0),
        "num_iters",
    ),
    ("smoothest_interpolant grid 0", lambda: ms.smoothest_interpolant(X1, y, grid=0), "grid"),
    (
        "smoothest_interpolant refine -1",
        lambda: ms.smoothest_interpolant(X1, y, refine=-1),
        "refine",
    ),
    ("smoothest_interpolant rtol nan", lambda: ms.smoothest_interpolant(X1, y, rtol=nan), "rtol"),
    ("smoothest_interpolant y nan", lambda: ms.smoothest_interpolant(X1, y * nan), "y"),
    (
        "smoothest_interpolant refine 100",
        lambda: ms.smoothest_interpolant(X1, y, refine=100),
        "refine",
    ),
    ("mode_hessians atol -1", lambda: ms.mode_hessians(P, x, y, atol=-1.0), "atol"),
    ("mode_hessians max_modes 0", lambda: ms.mode_hessians(P, x, y, max_modes=0), "max_modes"),
    ("stability_report eta 0", lambda: ms.stability_report(P, x, y, 0.0), "eta"),
    (
        "stability_report loss_tol nan",
        lambda: ms.stability_report(P, x, y, 0.1, loss_tol=nan),
        "loss_tol",
    ),
    (
        "sgd_stability_threshold batch 0",
        lambda: ms.sgd_stability_threshold(P, x, y, 0),
        "batch_size",
    ),
    (
        "sgd_stability_threshold batch 2.5",
        lambda: ms.sgd_stability_threshold(P, x, y, 2.5),
        "batch_size",
    ),
    (
        "sgd_stability_threshold batch > n",
        lambda: ms.sgd_stability_threshold(P, x, y, 7),
        "batch_size",
    ),
    (
        "batch_noise_p replacement no",
        lambda: ms.batch_noise_p(6, 2, replacement="no"),
        "replacement",
    ),
    ("batch_noise_p n 0", lambda: ms.batch_noise_p(0, 2), "n"),
    ("mean_square_rate eta nan", lambda: ms.mean_square_rate(P, x, y, nan, 2), "eta"),
    (
        "simulate_sgd steps 0",
        lambda: ms.simulate_sgd(P, x, y, 0.1, 2, jax.random.split(K, 3), steps=0),
        "steps",
    ),
    ("flattest num_iters 0", lambda: ms.flattest_implementation(P, x, y, num_iters=0), "num_iters"),
    ("flattest damping nan", lambda: ms.flattest_implementation(P, x, y, damping=nan), "damping"),
    ("toy_1d n 1", lambda: ms.data.toy_1d(n=1, key=K), "n"),
    ("toy_1d n 2.5", lambda: ms.data.toy_1d(n=2.5, key=K), "n"),
    ("toy_1d noise nan", lambda: ms.data.toy_1d(n=5, key=K, noise=nan), "noise"),
    ("toy_1d noise -1", lambda: ms.data.toy_1d(n=5, key=K, noise=-1.0), "noise"),
    ("toy_1d n 1e12", lambda: ms.data.toy_1d(n=10**12, key=K), "n"),
    ("load_xy missing", lambda: ms.data.load_xy("/nonexistent.csv"), "nonexistent"),
    ("init_deep widths 0", lambda: ms.init_deep(K, 2, (0, 3)), "widths"),
    ("init_deep widths 2.5", lambda: ms.init_deep(K, 2, (2.5, 3)), "widths"),
    ("bump_network in_dim 0", lambda: ms.bump_network(0), "in_dim"),
    ("gd_single_neuron eta 0", lambda: ms.gd_single_neuron(X1, jnp.abs(y), 0.0), "eta"),
    ("teacher_data n 0", lambda: ms.teacher_data(K, 0, 3), "n"),
    ("init_two_layer width 0", lambda: ms.init_two_layer(K, 0, 3), "width"),
    ("near_orthogonal_data n 2.5", lambda: ms.near_orthogonal_data(K, 2.5, 3), "n"),
    ("stable_rank nan", lambda: ms.stable_rank(jnp.ones((3, 3)) * nan), "w"),
    (
        "two_class_subset same classes",
        lambda: ms.two_class_subset(np.zeros((4, 2, 2)), np.array([0, 0, 1, 1]), classes=(1, 1)),
        "classes",
    ),
    (
        "two_class_subset n_per_class 0",
        lambda: ms.two_class_subset(np.zeros((4, 2, 2)), np.array([0, 0, 1, 1]), n_per_class=0),
        "n_per_class",
    ),
    ("hessian model not callable", lambda: ms.hessian(MP, MX, MY, model="mlp"), "model"),
    ("hessian loss not callable", lambda: ms.hessian(MP, MX, MY, model=apply, loss=3), "loss"),
    ("hessian x nan (model)", lambda: ms.hessian(MP, MX * nan, MY, model=apply), "x"),
    (
        "hessian memory (model)",
        lambda: ms.hessian({"w": jnp.zeros(10**6)}, MX, MY, model=big_model),
        "params",
    ),
    (
        "sharpness model method",
        lambda: ms.sharpness(MP, MX, MY, model=apply, method="gram_closed"),
        "method",
    ),
    (
        "sharpness model num_iters 0",
        lambda: ms.sharpness(MP, MX, MY, model=apply, method="lanczos", num_iters=0),
        "num_iters",
    ),
    ("sharpness model y shape", lambda: ms.sharpness(MP, MX, MY[:3], model=apply), "y"),
    (
        "hessian_trace model num_samples 1e9",
        lambda: ms.hessian_trace(MP, MX, MY, model=apply, key=K, num_samples=10**9),
        "num_samples",
    ),
    (
        "hessian_eigenvalues model k 0",
        lambda: ms.hessian_eigenvalues(MP, MX, MY, model=apply, k=0),
        "k",
    ),
    (
        "hessian_eigenvalues model curvature",
        lambda: ms.hessian_eigenvalues(MP, MX, MY, model=apply, k=1, curvature="x"),
        "curvature",
    ),
    (
        "spectral_density model num_iters 0",
        lambda: ms.spectral_density(MP, MX, MY, model=apply, key=K, num_iters=0),
        "num_iters",
    ),
    ("gauss_newton_gram model str", lambda: ms.gauss_newton_gram(MP, MX, model="x"), "model"),
    ("model_loss model str", lambda: ms.model_loss(model="x"), "model"),
    ("train model eta nan", lambda: ms.train(MP, MX, MY, nan, model=apply, steps=10), "eta"),
    (
        "sweep model chunk 0",
        lambda: ms.sweep(MP, MX, MY, [0.1], model=apply, steps=10, chunk_size=0, progress=False),
        "chunk_size",
    ),
    (
        "sweep model etas 2d",
        lambda: ms.sweep(MP, MX, MY, [[0.1]], model=apply, steps=10, progress=False),
        "etas",
    ),
    ("use_cpu_cores 2.5", lambda: ms.use_cpu_cores(2.5), "count"),
    ("hvp not callable", lambda: ms.hvp(3, MP, MP), "loss_fn"),
    (
        "deep_sharpness method",
        lambda: ms.deep_sharpness(ms.bump_network(2), jnp.ones((3, 2)), jnp.ones(3), method="x"),
        "method",
    ),
    (
        "normalized_margins y shape",
        lambda: ms.normalized_margins(jnp.ones((4, 3)), jnp.ones((5, 3)), jnp.ones(4)),
        "y",
    ),
    (
        "min_norm_interpolant max_iter 0",
        lambda: ms.min_norm_interpolant(X1, jnp.abs(y), max_iter=0),
        "max_iter",
    ),
    ("relative_gap shape", lambda: ms.relative_gap(jnp.ones(3), jnp.ones(4)), "w"),
]


@pytest.mark.parametrize(("call", "arg"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_bad_call_names_the_argument(call, arg):
    """A ValueError/TypeError naming ``arg``; never a result (NaN, truncated, wrong)."""
    with pytest.raises((ValueError, TypeError)) as e:
        out = call()
        jax.block_until_ready(out)
        pytest.fail(f"returned {out!r} instead of naming {arg}")
    assert re.search(r"\b" + re.escape(arg) + r"\b", str(e.value)), str(e.value)


def test_the_table_is_large():
    """The issue's target: at least 40 bad calls, of the shallow net and of any model."""
    assert len(BAD_CALLS) >= 40
    models = [c for c in BAD_CALLS if "model" in c[0]]
    assert len(models) >= 10 and len({c[0] for c in BAD_CALLS}) == len(BAD_CALLS)


def test_the_issue_examples_were_wrong_answers_before():
    """The valid neighbours of the issue's cases still compute the right thing."""
    ref = ms.weighted_curvature(P, x)  # rtol=nan used to give another value
    assert float(ms.weighted_curvature(P, x, rtol=1e-9)) == float(ref)
    assert float(ms.weight_1d(0.0, x)) > 0  # weight_1d(nan, x) used to be 0
    p = ms.init_shallow(K, 1, 8, knot_range=(-1.0, 1.0))
    t = -p.b1 / p.w1[:, 0]
    assert bool(jnp.all((t >= -1) & (t <= 1))) and float(jnp.std(t)) > 0.1


# ----------------------------------------------------------------------------- under jit


def test_eigh_dense_reports_bad_matrices_under_jit():
    f = jax.jit(lambda a: ms.eigh_dense(a).converged)
    assert bool(f(jnp.diag(jnp.arange(1.0, 5.0))))
    assert not bool(f(A.at[0, 0].set(nan)))
    assert not bool(f(A.at[0, 1].set(1.0)))  # not symmetric: eigh would read one triangle
    assert not bool(f(A.at[2, 2].set(jnp.inf)))


def test_iterative_solvers_report_nan_under_jit():
    def nan_matvec(v):
        return v * jnp.nan

    v0 = jnp.ones(4)
    assert not bool(jax.jit(lambda v: ms.lanczos(nan_matvec, v).converged)(v0))
    assert not bool(jax.jit(lambda v: ms.power_iteration(nan_matvec, v).converged)(v0))
    assert bool(jax.jit(lambda v: ms.lanczos(mv, v).converged)(v0))


@pytest.mark.parametrize("method", ["gram", "lanczos", "dense", "power"])
def test_sharpness_never_converged_on_nan(method):
    """Traced NaN data: the value is NaN and ``converged`` False, whatever the method."""
    f = jax.jit(lambda y: ms.sharpness(P, x, y, method=method, full_output=True))
    r = f(y.at[0].set(nan))
    assert not bool(r.converged)
    r = f(y)
    assert bool(jnp.isfinite(r.value))


def test_sharpness_any_model_never_converged_on_nan():
    f = jax.jit(lambda y: ms.sharpness(MP, MX, y, model=apply, method="lanczos",
                                       full_output=True))  # fmt: skip
    assert not bool(f(MY.at[0, 0].set(nan)).converged)


# ----------------------------------------------------------------------------- validators

ints = st.integers(min_value=-(2**70), max_value=2**70)


@settings(deadline=None)
@given(ints, st.integers(-50, 50), st.integers(0, 100))
def test_check_int_accepts_exactly_the_range(i, lo, span):
    hi = lo + span
    if lo <= i <= hi and abs(i) < 2**63:
        assert v.check_int(i, "k", minimum=lo, maximum=hi) == i
    else:
        with pytest.raises((ValueError, TypeError), match=r"\bk\b"):
            v.check_int(i, "k", minimum=lo, maximum=hi)


@settings(deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_check_int_rejects_every_float(f):
    with pytest.raises(TypeError, match="count must be an integer"):
        v.check_int(f, "count")


@settings(deadline=None)
@given(
    st.one_of(st.booleans(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=2))
)
def test_check_int_rejects_non_numbers(obj):
    with pytest.raises((TypeError, ValueError), match="count"):
        v.check_int(obj, "count")


@settings(deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True),
       st.floats(-10, 10), st.floats(0, 10), st.booleans(), st.booleans())  # fmt: skip
def test_check_real_is_the_interval(f, lo, span, lo_open, hi_open):
    hi = lo + span
    inside = (
        np.isfinite(f) and (lo < f if lo_open else lo <= f) and (f < hi if hi_open else f <= hi)
    )
    if inside:
        assert v.check_real(f, "tol", lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open) == f
    else:
        with pytest.raises(ValueError, match="tol must be a finite number in"):
            v.check_real(f, "tol", lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)


@settings(deadline=None)
@given(
    st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True)
)
def test_check_interval(a, b):
    if np.isfinite(a) and np.isfinite(b) and a < b:
        assert v.check_interval((a, b), "knot_range") == (a, b)
    else:
        with pytest.raises(ValueError, match="knot_range"):
            v.check_interval((a, b), "knot_range")


@settings(deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=10))
def test_check_permutation(lst):
    a = np.array(lst)
    if sorted(lst) == list(range(len(lst))):
        v.check_permutation(a, len(lst))
    else:
        with pytest.raises(ValueError, match="perm must be a permutation"):
            v.check_permutation(a, len(lst))


@settings(max_examples=20, deadline=None)
@given(st.permutations(list(range(8))))
def test_permute_preserves_the_function(perm):
    """A true permutation is accepted, and is a symmetry (an independent forward pass)."""
    q = ms.permute(P, jnp.array(perm))
    np.testing.assert_allclose(ms.forward(q, x), ms.forward(P, x), rtol=1e-14)


@settings(deadline=None)
@given(st.one_of(st.text(max_size=4), st.integers(), st.none(), st.floats()))
def test_check_bool_only_bools(obj):
    with pytest.raises(ValueError, match="replace must be True or False"):
        v.check_bool(obj, "replace")


@settings(deadline=None)
@given(st.integers(0, 2**40), st.integers(1, 2**40))
def test_int_in_range_matches_check_int(i, hi):
    parse = ca.int_in_range(1, hi)
    if 1 <= i <= hi:
        assert parse(str(i)) == i == parse(i)
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="expected an integer in"):
            parse(str(i))


@settings(deadline=None)
@given(st.floats(1e-6, 1e3), st.floats(1.001, 100), st.integers(1, 200))
def test_eta_list_geometric(lo, ratio, num):
    got = ca.eta_list(f"{lo!r}:{lo * ratio!r}:{num}")
    assert len(got) == num and all(a > 0 for a in got)
    np.testing.assert_allclose(got, np.geomspace(lo, lo * ratio, num), rtol=1e-12)


@settings(deadline=None)
@given(st.text(max_size=12))
def test_eta_list_never_crashes(text):
    """Any text: a tuple of positive finite floats, or an ArgumentTypeError (never another)."""
    try:
        got = ca.eta_list(text)
    except argparse.ArgumentTypeError:
        return
    assert 1 <= len(got) <= ca.MAX_RUNS and all(np.isfinite(a) and a > 0 for a in got)


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.sampled_from(["loss", "w1", "x"]),
                       st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=4),
                       min_size=1))  # fmt: skip
def test_checksum_sees_every_change(arrays):
    from minstab.engine.sweep import checksum

    arrays = {k: np.asarray(a) for k, a in arrays.items()}
    ref = checksum(arrays)
    assert checksum({k: a.copy() for k, a in arrays.items()}) == ref
    k = sorted(arrays)[0]
    edited = {**arrays, k: arrays[k] + 1.0}
    assert checksum(edited) != ref
    assert checksum({**arrays, k: arrays[k].astype(np.float32)}) != ref


def test_memory_estimate_is_in_the_message(monkeypatch):
    monkeypatch.setenv("MINSTAB_MEMORY_LIMIT", "1e6")
    with pytest.raises(ValueError, match=r"num_samples: .* would need about .* MB"):
        ms.hessian_trace(P, x, y, key=K, num_samples=10**5)
