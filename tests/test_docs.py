"""The README example and the docstring examples run (in fresh interpreters, default precision)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_python_example_runs():
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert blocks, "README has no python example"
    for code in blocks:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr


def test_readme_quick_start_has_two_commands():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    cmds = re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
    assert len(cmds) == 2
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = cmds[1].split("#")[0].strip()
    assert test_cmd in ci, "CI must call exactly the README test command"


# every module with docstring examples; each must run at least one (a module listed here whose
# examples were deleted, or not collected, fails instead of passing vacuously)
MODULES = [
    *(
        "shallow.nets",
        "engine.losses",
        "shallow.losses",
        "shallow.curvature",
        "engine.eigen",
        "data.toy",
        "engine.train",
    ),
    *(
        "shallow.bounds",
        "shallow.flattest",
        "shallow.report",
        "shallow.predict",
        "shallow.sgd",
        "papers.rank_margins",
        "papers.min_norm",
        "_cli_args",
    ),
    *("engine.compile_time", "engine.spectrum", "engine.operators", "engine.problem"),
    "engine.optimizers",
    *("engine.adapters", "engine.batching", "engine.blocks"),
]

_DOCTEST_ALL = """
import doctest, importlib, json, pkgutil
import minstab
out = {}
for info in pkgutil.walk_packages(minstab.__path__, "minstab."):
    if info.name.endswith("__main__"):  # importing it runs the command line
        continue
    mod = importlib.import_module(info.name)
    r = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE, report=False)
    out[info.name.removeprefix("minstab.")] = [r.attempted, r.failed]
print()
print("DOCTEST-JSON " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def doctest_results():
    """Every module's docstring examples, in one fresh interpreter at default precision."""
    proc = subprocess.run(
        [sys.executable, "-c", _DOCTEST_ALL], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = proc.stdout.rsplit("DOCTEST-JSON ", 1)[1]
    return json.loads(line), proc.stdout


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module, doctest_results):
    results, log = doctest_results
    attempted, failed = results[module]
    assert attempted > 0, f"minstab.{module} has no docstring examples"
    assert failed == 0, log


def test_every_docstring_example_in_the_package_passes(doctest_results):
    results, log = doctest_results
    assert not {m: r for m, r in results.items() if r[1]}, log
    assert "shallow.bounds" in results and "experiments.outcomes" in results  # the walk found them
