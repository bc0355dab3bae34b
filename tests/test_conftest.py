"""The suite's own rules: under CI=true a skip is a failure (tests/conftest.py)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent

CASES = {
    "test_module_skip.py": 'import pytest\npytest.importorskip("no_such_module_xyz")\n\n'
    "def test_a():\n    pass\n",
    "test_skips.py": """import pytest

def test_ok():
    pass

def test_missing_data():
    pytest.skip("dataset-fashion-mnist not installed")

@pytest.mark.skipif(True, reason="extra not installed")
def test_skipif():
    pass

@pytest.mark.ci_may_skip("needs several GPUs")
def test_allowed():
    pytest.skip("one device only")

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    assert False
""",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("proj")
    shutil.copy(HERE / "conftest.py", d / "conftest.py")
    for name, text in CASES.items():
        (d / name).write_text(text)
    return d


def _outcomes(project, ci, name="test_skips.py"):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-o", "addopts=", "-rA", "-q", name],
        capture_output=True, text=True, env=env, cwd=project, timeout=300,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.split(" ")[0] in _WORDS]
    return proc, {ln.split(" ")[1].split("::")[-1].split(" ")[0]: ln.split(" ")[0] for ln in lines}


_WORDS = ("PASSED", "FAILED", "SKIPPED", "XFAIL", "ERROR")


def test_skips_are_skips_outside_ci(project):
    proc, out = _outcomes(project, ci=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out["test_ok"] == "PASSED" and out["test_xfail"] == "XFAIL"
    assert "FAILED" not in proc.stdout
    proc, _ = _outcomes(project, ci=False, name="test_module_skip.py")
    assert proc.returncode == 5 and "1 skipped" in proc.stdout, proc.stdout  # 5: none ran


def test_every_skip_fails_under_ci_unless_marked(project):
    """A missing dependency or data set must not pass CI as a skip (lost coverage)."""
    proc, out = _outcomes(project, ci=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert out["test_ok"] == "PASSED" and out["test_xfail"] == "XFAIL"
    assert out["test_missing_data"] == "FAILED"
    assert out["test_skipif"] == "ERROR"  # skipif is evaluated in setup: an error there
    # marked ci_may_skip: still a skip (-rA names skips by file and line, not by test)
    assert "1 skipped" in proc.stdout and "one device only" in proc.stdout
    assert "skipped under CI=true: dataset-fashion-mnist not installed" in proc.stdout


def test_module_level_importorskip_fails_under_ci(project):
    proc, _ = _outcomes(project, ci=True, name="test_module_skip.py")
    assert proc.returncode != 0, proc.stdout
    assert "skipped under CI=true" in proc.stdout and "no_such_module_xyz" in proc.stdout


# ----------------------------------------------------------------- compilation optimization level


@pytest.mark.ci_may_skip("MINSTAB_TEST_XLA_OPT=default asks for XLA's default level")
def test_suite_compiles_fast_and_run_bound_tests_optimize():
    """The suite compiles at XLA's level 0 (subprocesses inherit it through the environment)."""
    import jax

    if os.environ.get("MINSTAB_TEST_XLA_OPT") == "default":
        pytest.skip("MINSTAB_TEST_XLA_OPT=default: the whole suite at XLA's default level")
    from tests.conftest import FAST_XLA_FLAGS

    assert os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] == "1"
    assert set(FAST_XLA_FLAGS) <= set(os.environ["XLA_FLAGS"].split())
    assert jax.config.read("jax_disable_most_optimizations") is True


@pytest.mark.run_bound
def test_run_bound_marker_restores_default_optimization():
    import jax

    assert jax.config.read("jax_disable_most_optimizations") is False
