"""The tree shows the layers: every import inside ``minstab`` points to its own folder or below.

Read from the source (every ``import``, also those inside functions), not from a running
interpreter, so a lazy import that goes the wrong way is caught too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "minstab"

#: bottom to top; a module may import its own layer and the layers before it
LAYERS = {
    "utilities": 0,  # _validate, _io, _cli_args, progress (top-level private helpers)
    "engine": 1,  # any JAX model: problem, operators, eigen, curvature, spectrum, train, sweep, ...
    "shallow": 2,  # the shallow-network theory of seeds 000/004
    "papers": 3,  # the other seed papers' models
    "data": 3,  # data sets
    "plotting": 4,
    "public": 4,  # minstab/__init__.py: the one public surface, which experiments may use
    "experiments": 5,
    "interface": 6,  # cli.py, __main__.py
}

#: the engine imports nothing from the shallow layer: ``model=None`` is the built-in model that
#: minstab.shallow registers (minstab.engine.problem.register_builtin), so the former ten
#: engine -> shallow edges (the built-in net, the main job's diagnostics) are gone (issue 31)


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "minstab":
        return "external"
    if len(parts) == 1:
        return "public"
    if parts[1] in ("cli", "__main__"):
        return "interface"
    if parts[1] in ("_validate", "_io", "_cli_args", "progress"):
        return "utilities"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Absolute names of the ``minstab`` modules (or packages) that ``path`` imports."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None:  # from . import a, b: modules, or names of the package
                out.update(_submodule_or_package(target, a.name) for a in node.names)
            else:
                out.add(target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m == "minstab" or m.startswith("minstab.")}


def _submodule_or_package(package: str, name: str) -> str:
    where = PKG.parent.joinpath(*package.split("."), name)
    return f"{package}.{name}" if where.is_dir() or where.with_suffix(".py").exists() else package


def edges():
    for path in sorted(PKG.rglob("*.py")):
        src = module_name(path)
        for dst in sorted(imports(path)):
            yield src, dst


def test_every_module_is_in_a_layer():
    unknown = {layer(m) for m, _ in edges()} - set(LAYERS)
    assert not unknown, f"modules outside the layers: {unknown}"


def test_imports_point_to_the_same_layer_or_below():
    upward = []
    for src, dst in edges():
        ls, ld = layer(src), layer(dst)
        if ld == "external" or LAYERS[ld] <= LAYERS[ls]:
            continue
        upward.append(f"{src} -> {dst}")
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_the_engine_imports_nothing_from_the_shallow_layer():
    # the engine's modules are found (the check cannot pass on an empty tree)
    engine = {s for s, _ in edges() if layer(s) == "engine"}
    assert {"minstab.engine.problem", "minstab.engine.sweep", "minstab.engine.train"} <= engine
    bad = [f"{s} -> {d}" for s, d in edges() if layer(s) == "engine" and layer(d) == "shallow"]
    assert not bad, bad


def test_model_none_is_the_registered_shallow_net():
    # the one registration point is filled on import; model=None resolves through it
    import jax.numpy as jnp

    import minstab as ms
    from minstab.engine import problem as problem_mod

    assert problem_mod.builtin().params_type is ms.ShallowParams
    assert ms.Problem().net is ms.forward
    p = ms.ShallowParams(jnp.array([[1.0], [-1.0]]), jnp.array([0.0, 0.5]),
                         jnp.array([2.0, -1.0]), jnp.array(0.25))  # fmt: skip
    x = jnp.array([[-1.0], [0.5], [2.0]])
    # f(x) = 2 relu(x) - relu(0.5 - x) + 0.25, by hand
    expected = jnp.array([-1.25, 1.25, 4.25])
    assert jnp.allclose(ms.Problem(negative_slope=0.0).apply(p, x), expected)


def test_a_missing_registration_is_a_clear_error(monkeypatch):
    from minstab.engine import problem as problem_mod

    monkeypatch.setattr(problem_mod, "_BUILTIN", {})
    with pytest.raises(RuntimeError, match="no built-in model is registered"):
        problem_mod.Problem.resolve()  # the slope check asks the built-in model
    with pytest.raises(ValueError, match="BuiltinModel"):
        problem_mod.register_builtin(object())


def test_the_library_never_imports_the_experiments_or_the_command_line():
    bad = [f"{s} -> {d}" for s, d in edges()
           if layer(s) in ("engine", "shallow", "papers", "data", "utilities", "plotting")
           and layer(d) in ("experiments", "interface", "public")]  # fmt: skip
    assert not bad, bad


@pytest.mark.parametrize(
    "path, expected",
    [("minstab/engine/sweep.py", "engine"), ("minstab/shallow/nets.py", "shallow"),
     ("minstab/experiments/eos.py", "experiments"), ("minstab/cli.py", "interface"),
     ("minstab/__init__.py", "public"),
     ("minstab/_validate.py", "utilities")],
)  # fmt: skip
def test_layer_of_a_path(path, expected):
    assert layer(module_name(PKG.parent / path)) == expected


def test_the_import_reader_resolves_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "minstab" / "engine"
    pkg.mkdir(parents=True)
    f = pkg / "x.py"
    f.write_text("from ..shallow.nets import forward\nfrom . import eigen\n"
                 "def g():\n    from .. import plotting\n")  # fmt: skip
    (tmp_path / "minstab" / "engine" / "eigen.py").write_text("")
    (tmp_path / "minstab" / "plotting.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "PKG", tmp_path / "minstab")
    assert imports(f) == {"minstab.shallow.nets", "minstab.engine.eigen", "minstab.plotting"}
