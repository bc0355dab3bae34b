"""Test configuration: float64 and strict numerics everywhere (STYLE.md, lineax tests/conftest.py).

Also, before jax is imported:

* JAX's persistent compilation cache, through environment variables so that every process of
  the suite shares it: pytest-xdist workers, the subprocesses of the command-line, doctest and
  sweep tests, and notebook kernels. Most of the suite's time is XLA compilation of the same
  small programs in several processes. ``MINSTAB_TEST_JAX_CACHE=DIR`` moves it, ``=0`` turns it
  off (e.g. to time a cold run: ``rm -rf .pytest_cache/jax-cache`` does the same).
* XLA:CPU compiles at backend optimization level 0 (``JAX_DISABLE_MOST_OPTIMIZATIONS``) with
  its older fusion emitter (``XLA_FLAGS``), also in subprocesses (``tests.helpers.xla_env``
  adds flags to these): most of the suite's time is compilation of programs that then run for
  milliseconds. A test marked ``run_bound`` compiles at XLA's default optimization level.
* Under CI (``CI=true``) a skipped test is a failure: a skip there means a dependency or data
  set that ``.ci/run`` should have installed is missing, and coverage would be lost silently.
  A test that may legitimately skip in CI says so with ``@pytest.mark.ci_may_skip("why")``.
* After each test module, JAX's caches are cleared (``jax.clear_caches()``), which frees the
  compiled programs of that module. Every live XLA:CPU executable holds about 9-16 memory
  mappings of JIT-compiled code (measured: 1 000 small programs kept alive add ~9 000 lines to
  ``/proc/self/maps``; ``tests/test_train.py`` alone ends at ~5 300), and Linux allows a process
  65 530 (``vm.max_map_count``). A pytest-xdist worker that ran half of the suite without
  releasing anything reached that limit and died of a segmentation fault inside XLA's
  compilation (in CI on 2026-12-07, three times at ~97 %, in ``tests/test_train.py``); the
  programs a later module shares are reloaded from the persistent compilation cache.
"""

import gc
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("MINSTAB_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# pytest-xdist already runs one worker per core: the command lines the tests start keep one CPU
# device instead of one per core (tests/test_devices.py asks for several explicitly)
os.environ.setdefault("MINSTAB_CPU_DEVICES", "1")


def _compilation_cache_env() -> None:
    where = os.environ.get("MINSTAB_TEST_JAX_CACHE", str(ROOT / ".pytest_cache" / "jax-cache"))
    if where == "0":
        # and the command line's own cache (~/.cache/minstab/jax) stays off too
        os.environ.setdefault("MINSTAB_COMPILATION_CACHE", "0")
        return
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", where)
    # cache every program, however fast it compiles or small it is: the tests compile
    # thousands of small programs, many of them in more than one process
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")


# Faster compilation for every process of the suite, through the environment so that
# subprocesses and notebook kernels inherit it: XLA:CPU's backend (LLVM) optimization level 0
# (``jax_disable_most_optimizations``) and its older loop-fusion emitter
# (``--xla_cpu_use_fusion_emitters=false``). The suite's thousands of small programs compile
# about 2x faster (tests/test_engine.py alone: 20 s with both, 28 s at level 0 only, 35 s with
# the older emitter only; the whole suite cold 9.5 -> 5.2 min, README "Development"). The
# programs are the same operations, rounded differently in places (contraction, fusion), so
# a quantity that jumps with the rounding (tests/helpers.py ``default_xla_env``) may land
# elsewhere. A test that runs longer than it compiles is marked ``run_bound`` and gets XLA's
# default optimization level back (the fusion-emitter flag is fixed per process);
# ``MINSTAB_TEST_XLA_OPT=default`` runs the whole suite with XLA's defaults (as users do).
FAST_XLA_FLAGS = ("--xla_cpu_use_fusion_emitters=false",)


def _fast_compile_env() -> None:
    if os.environ.get("MINSTAB_TEST_XLA_OPT", "fast") == "default":
        return
    os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
    flags = os.environ.get("XLA_FLAGS", "").split()
    os.environ["XLA_FLAGS"] = " ".join([*flags, *(f for f in FAST_XLA_FLAGS if f not in flags)])


_compilation_cache_env()
_fast_compile_env()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


def tol(dtype) -> float:
    """Relative tolerance the float64 reference tests use for a dtype."""
    return 1e-10 if jnp.dtype(dtype) == jnp.float64 else 1e-4


@pytest.fixture
def getkey():
    """Fresh PRNG keys: ``k = getkey()``."""
    state = {"key": jax.random.key(1234)}

    def _next():
        state["key"], sub = jax.random.split(state["key"])
        return sub

    return _next


# ----------------------------------------------------------------------------- skips under CI


def in_ci() -> bool:
    """Whether the suite runs in CI (``CI`` set to anything but empty/0/false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _skip_reason(longrepr) -> str:
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _ci_failure(reason: str) -> str:
    return (
        f"skipped under CI=true: {reason}\n"
        "CI installs every extra and data set (.ci/run), so a skip here is lost coverage; "
        'install what is missing, or mark the test @pytest.mark.ci_may_skip("why").'
    )


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "ci_may_skip(reason): this test may skip under CI=true (other skips fail there)"
    )
    config.addinivalue_line(
        "markers", "run_bound: runs longer than it compiles: XLA's default optimization level"
    )


# Longest modules first (seconds per module in a cold 2-worker run, 2026-12-06: notebooks 60,
# docs 38, implicit_bias 36, spectrum 33, sgd 28, sweep_cli 26, sweep_float32_resume 24,
# engine 22, eigen 21, eos 20; the rest <= 18). pytest-xdist's ``--dist loadfile`` hands
# modules out in collection order as workers free up, so starting with the long ones keeps both
# workers busy to the end (longest processing time first) instead of leaving one idle while the
# other runs a late long module.
LONG_MODULES = (
    "test_notebooks.py", "test_docs.py", "test_implicit_bias.py", "test_spectrum.py",
    "test_sgd.py", "test_sweep_cli.py", "test_sweep_float32_resume.py", "test_engine.py",
    "test_eigen.py", "test_eos.py",
)  # fmt: skip


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order kept within


@pytest.fixture(autouse=True)
def _xla_optimization(request):
    """XLA's default optimization for a ``run_bound`` test (the suite compiles at level 0)."""
    if request.node.get_closest_marker("run_bound") is None:
        yield
        return
    before = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", False)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", before)


def memory_mappings() -> int:
    """How many memory mappings this process holds (lines of ``/proc/self/maps``; 0 if none)."""
    try:
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)
    except OSError:  # not Linux
        return 0


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Free the module's compiled programs when it ends (the module docstring says why)."""
    yield
    jax.clear_caches()
    gc.collect()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not (rep.skipped and in_ci()) or hasattr(rep, "wasxfail"):
        return
    if item.get_closest_marker("ci_may_skip") is None:
        rep.outcome = "failed"
        rep.longrepr = _ci_failure(_skip_reason(rep.longrepr))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module-level skip (``pytest.importorskip`` at import) fails the module under CI."""
    outcome = yield
    rep = outcome.get_result()
    if rep.outcome == "skipped" and in_ci():
        rep.outcome = "failed"
        rep.longrepr = _ci_failure(_skip_reason(rep.longrepr))
