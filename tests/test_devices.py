"""Every core a CPU device (``minstab.use_cpu_cores``) and the command line's use of it.

JAX fixes its devices when it starts, so the checks that need a fresh JAX run in subprocesses.
"""

import json
import subprocess
import sys

import jax
import pytest

import minstab as ms
from minstab import cli
from tests.helpers import xla_env

FRESH = """
import json, sys
import jax
from minstab import cli, use_cpu_cores
cli.main(["info"])  # a fresh process: the command line asks JAX for MINSTAB_CPU_DEVICES devices
out = {"devices": len(jax.devices("cpu")), "again": use_cpu_cores(3)}
try:
    use_cpu_cores(2)
except RuntimeError as e:
    out["late"] = str(e)
print(json.dumps(out))
"""


def _run(code, env):
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    return lines, json.loads(lines[-1])


def test_the_command_line_makes_the_cpu_devices_it_is_asked_for():
    lines, out = _run(FRESH, xla_env(MINSTAB_CPU_DEVICES="3", JAX_PLATFORMS="cpu"))
    assert any(line.split() == ["device_count:", "3"] for line in lines), lines
    assert out["devices"] == 3
    assert out["again"] == 3  # the count JAX already has: harmless
    # another count once JAX has started: an error that says when to call it
    assert "JAX has started with 3 CPU device(s)" in out["late"]
    assert "right after `import jax`" in out["late"]


def test_a_count_forced_through_xla_flags_is_kept():
    code = (
        "import json, jax, minstab\n"
        "n = minstab.use_cpu_cores(3)\n"
        "print(json.dumps({'returned': n, 'devices': len(jax.devices('cpu'))}))"
    )
    _, out = _run(code, xla_env("--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu"))
    assert out == {"returned": 2, "devices": 2}


@pytest.mark.parametrize("count", [0, -1, 1.5, True, "2"])
def test_bad_count(count):
    with pytest.raises(ValueError, match="count must be a positive integer"):
        ms.use_cpu_cores(count)


def test_started_jax_keeps_its_devices():
    have = len(jax.devices("cpu"))
    assert ms.use_cpu_cores(have) == have
    with pytest.raises(RuntimeError, match="before any JAX operation"):
        ms.use_cpu_cores(have + 1)


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_bad_environment_variable_exits_2_with_one_line(value, monkeypatch, capsys):
    monkeypatch.setenv("MINSTAB_CPU_DEVICES", value)
    assert cli.main(["info"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MINSTAB_CPU_DEVICES" in err[0] and repr(value) in err[0], err


def test_an_explicit_count_jax_cannot_give_in_process_exits_2(monkeypatch, capsys):
    """In-process, JAX has started: the default gives way, an explicit other count does not."""
    have = len(jax.devices("cpu"))
    monkeypatch.setenv("MINSTAB_CPU_DEVICES", str(have + 1))
    assert cli.main(["info"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MINSTAB_CPU_DEVICES" in err[0] and "JAX has started" in err[0], err
    monkeypatch.delenv("MINSTAB_CPU_DEVICES")
    assert cli.main(["info"]) == 0  # every core by default: the caller's devices instead
