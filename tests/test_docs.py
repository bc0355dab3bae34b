"""The README example and the docstring examples run (in fresh interpreters, default precision)."""

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


MODULES = [
    *("nets", "losses", "curvature", "eigen", "data"),
    *("bounds", "flattest", "report", "predict", "sgd", "implicit_bias"),
]


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module):
    code = (
        f"import doctest, sys, minstab.{module} as m\n"
        "r = doctest.testmod(m, optionflags=doctest.NORMALIZE_WHITESPACE)\n"
        "sys.exit(1 if r.failed else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
