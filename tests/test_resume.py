"""Resuming a sweep from its chunk files: damaged files are recomputed (with a warning), never
trusted or fatal, and chunks written on another device count are reused only when they are the
same chunks, with flattest computed inside the sharded program.
"""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import minstab as ms
from minstab.engine.sweep import _ARRAY_FIELDS, ChunkStore, checksum, load_sweep, sweep
from tests.helpers import computed_chunks, xla_env
from tests.test_sweep import ETAS, _assert_same, _problem

HERE = Path(__file__).parent
KW = dict(steps=200, log_every=50, tol=1e-12, chunk_size=4, progress=False, flattest=False)


@pytest.fixture(scope="module")
def reference():
    """The sweep without any chunk directory."""
    p, x, y = _problem()
    return p, x, y, sweep(p, x, y, ETAS, **KW)


def _fresh_run(tmp_path, reference):
    p, x, y, ref = reference
    r = sweep(p, x, y, ETAS, out_dir=tmp_path, **KW)
    assert computed_chunks(r) == [0, 1]
    _assert_same(r, ref, rtol=0)
    return tmp_path / "chunks"


def _damage_truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage_empty(path):
    path.write_bytes(b"")


def _damage_garbage(path):
    path.write_text("not a chunk")


def _damage_missing_field(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "loss"}
    np.savez(path, **arrays)


def _damage_wrong_run_count(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k][:2] for k in z.files}
    np.savez(path, **arrays)


def _read(path):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays[ChunkStore.META_KEY][0]))
    return arrays, meta


def _write(path, arrays, meta=None, *, forge=False):
    """Save ``arrays``; ``forge``: with a description rewritten to match them (dtype, shape,
    checksum), as a careful forger would, so that only the semantic checks are left."""
    arrays = {k: a for k, a in arrays.items() if k != ChunkStore.META_KEY}
    if meta is not None:
        if forge:
            meta = {**meta, "dtype": {k: str(a.dtype) for k, a in sorted(arrays.items())},
                    "shape": {k: list(a.shape) for k, a in sorted(arrays.items())},
                    "sha256": checksum(arrays)}  # fmt: skip
        arrays[ChunkStore.META_KEY] = np.array([json.dumps(meta)])
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _damage_swapped(path):
    """Chunk 0 copied over chunk 1 (same run count): before issue 30 it was loaded silently."""
    path.write_bytes((path.parent / "chunk_0000.npz").read_bytes())


def _damage_edited_value(path):
    arrays, meta = _read(path)
    arrays["params_w2"] = arrays["params_w2"] * (1 + 1e-12)
    _write(path, arrays, meta)


def _damage_nan_loss(path):
    arrays, meta = _read(path)
    arrays["loss"] = np.where(arrays["diverged"], arrays["loss"], np.nan)
    _write(path, arrays, meta)


def _damage_nan_loss_forged(path):
    arrays, meta = _read(path)
    arrays["loss"] = np.where(arrays["diverged"], arrays["loss"], np.nan)
    _write(path, arrays, meta, forge=True)


def _float32(arrays):
    return {k: a.astype(np.float32) if a.dtype == np.float64 else a for k, a in arrays.items()}


def _damage_float32(path):
    arrays, meta = _read(path)
    _write(path, _float32(arrays), meta)


def _damage_float32_forged(path):
    arrays, meta = _read(path)
    _write(path, _float32(arrays), meta, forge=True)


def _damage_directory(path):
    path.unlink()
    path.mkdir()
    (path / "inside.txt").write_text("a user's file")


def _damage_no_description(path):
    arrays, _ = _read(path)
    _write(path, arrays)


def _damage_other_sweep(path):
    arrays, meta = _read(path)
    _write(path, arrays, {**meta, "sweep": "0" * 64})


DAMAGE = {
    "swapped": (_damage_swapped, "does not match this sweep .it holds chunk 0"),
    "edited_value": (_damage_edited_value, "checksum mismatch"),
    "nan_loss": (_damage_nan_loss, "checksum mismatch"),
    "nan_loss_forged": (_damage_nan_loss_forged, "non-finite loss for 2 run"),
    "float32": (_damage_float32, "dtype of .*changed"),
    "float32_forged": (_damage_float32_forged, "not float64"),
    "directory": (_damage_directory, "a directory, not a chunk"),
    "no_description": (_damage_no_description, "no valid description"),
    "other_sweep": (_damage_other_sweep, "written by another sweep"),
    "truncated": (_damage_truncate, "unreadable chunk"),
    "empty": (_damage_empty, "unreadable chunk"),
    "garbage": (_damage_garbage, "unreadable chunk"),
    "missing_field": (_damage_missing_field, "incomplete chunk"),
    "wrong_run_count": (_damage_wrong_run_count, "incomplete chunk"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_chunk_is_recomputed_with_a_warning(kind, reference, tmp_path):
    """A crash (or a silently wrong table built from a bad file) would fail here."""
    p, x, y, ref = reference
    chunks = _fresh_run(tmp_path, reference)
    damage, message = DAMAGE[kind]
    damage(chunks / "chunk_0001.npz")
    with pytest.warns(UserWarning, match=message):
        r = sweep(p, x, y, ETAS, out_dir=tmp_path, **KW)
    assert computed_chunks(r) == [1]  # chunk 0 reused, chunk 1 recomputed
    _assert_same(r, ref, rtol=0)
    for f in _ARRAY_FIELDS:  # bit for bit, NaN where the reference has NaN
        np.testing.assert_array_equal(getattr(r, f), getattr(ref, f), err_msg=f)
    # the rewritten file is whole again: the next run loads both without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = sweep(p, x, y, ETAS, out_dir=tmp_path, **KW)
    assert computed_chunks(again) == []


def test_damaged_manifest_recomputes_everything(reference, tmp_path):
    p, x, y, ref = reference
    chunks = _fresh_run(tmp_path, reference)
    (chunks / "manifest.json").write_text('{"hash": "abc", ')  # cut short
    with pytest.warns(UserWarning, match="unreadable manifest"):
        r = sweep(p, x, y, ETAS, out_dir=tmp_path, **KW)
    assert computed_chunks(r) == [0, 1]
    _assert_same(r, ref, rtol=0)


def test_other_device_count_flattest_in_the_sharded_program(reference, tmp_path):
    """3 devices, chunk_size 2: chunks of 3 runs (chunk size and chunk count 2 not divisible by
    the device count), flattest computed inside the sharded jit. One device then resumes the
    same sweep (chunk_size 3, same chunks) without recomputing anything.
    """
    p, x, y, ref = reference
    env = xla_env("--xla_force_host_platform_device_count=3", JAX_PLATFORMS="cpu")
    cmd = [sys.executable, str(HERE / "_sweep_worker.py"), str(tmp_path / "w"),
           "--chunks-dir", str(tmp_path), "--chunk", "2", "--flattest", "1"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = json.loads((tmp_path / "w" / "worker.json").read_text())
    assert info["devices"] == 3 and info["computed"] == [0, 1]
    manifest = json.loads((tmp_path / "chunks" / "manifest.json").read_text())
    assert manifest["chunk_size"] == 3 and manifest["num_chunks"] == 2
    sharded = load_sweep(tmp_path / "w")
    _assert_same(sharded, ref)  # sharding over 3 devices changes no run
    kw = {**KW, "chunk_size": 3, "flattest": True}
    r = sweep(p, x, y, ETAS, out_dir=tmp_path, **kw)
    assert computed_chunks(r) == [], "chunks of another device count were not reused"
    _assert_same(r, ref)
    # flattest inside the sharded program equals the library's flattest run by run (NaN only
    # for the diverged run)
    assert np.isnan(r.flattest_sharpness[-1]) and bool(r.diverged[-1])
    for i in np.flatnonzero(~r.diverged):
        one = ms.flattest_implementation(r.params_at(i), jnp.asarray(x), jnp.asarray(y))
        np.testing.assert_allclose(r.flattest_sharpness[i], float(one.sharpness), rtol=1e-10)


def test_summary_names_diverged_runs(reference):
    """A diverged run is reported as such (README model sweep): never a loss to read."""
    ref = reference[3]
    counts = ref.counts()
    assert sum(counts.values()) == ref.num_runs and counts["diverged"] == 1
    text = ref.summary()
    at = int(ref.diverged_at[-1])
    assert (
        f"1 diverged (eta 2, stopped at steps {at}-{at}; loss and sharpness are no result)" in text
    )
    assert "diverged at step" in ref.table().splitlines()[-1]
    assert "flattest" in ref.table()  # the shallow net's columns
