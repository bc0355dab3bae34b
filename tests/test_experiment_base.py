"""The experiment driver (``minstab.experiments.base``) on a toy experiment of its own."""

from __future__ import annotations

import dataclasses
import json
import types

import pytest

from minstab import cli
from minstab._cli_args import UsageError
from minstab.experiments import base
from minstab.experiments.outcomes import check, verdict


@dataclasses.dataclass(frozen=True)
class Config:
    steps: int = base.option(100, "steps")
    etas: tuple[float, ...] = base.option((0.1, 0.2), "step sizes")
    dtype: str = base.option("float64", "precision", choices=("float32", "float64"))
    fail: bool = base.option(False, "make the check fail")
    threshold: float = 0.5  # not a flag; a TOML key

    def __post_init__(self):
        if self.steps > 1000:
            raise ValueError(f"steps: expected at most 1000, got {self.steps}")

    @classmethod
    def quick(cls, **kw):
        """Ten steps."""
        return cls(**{"steps": 10, **kw})


def _toy():
    calls = []

    def run(config, *, out_dir=None, progress=None):
        import jax

        calls.append((config, bool(jax.config.jax_enable_x64)))
        for _ in config.etas:
            progress.update(1)
        return {"config": config, "sum": config.steps * sum(config.etas)}

    def outcomes(result):
        c = {"holds": check(not result["config"].fail, "toy", covered=1, eligible=1)}
        v = {"shown": verdict([{"seed": s, "shown": True} for s in range(4)],
                              statement="toy", threshold="always")}  # fmt: skip
        return c, v

    mod = types.SimpleNamespace(
        NAME="toy", Config=Config, run=run, outcomes=outcomes, calls=calls,
        table=lambda r: f"sum {r['sum']:g}", plot=lambda r, out: [],
        to_json=lambda r: {"config": dataclasses.asdict(r["config"]), "sum": r["sum"]},
        progress_total=lambda c: len(c.etas),
    )  # fmt: skip
    return mod


def _parse(mod, argv):
    p = cli._Parser(prog="toy")
    base.add_arguments(p, mod)
    return p.parse_args(argv)


def test_the_toy_module_meets_the_protocol():
    assert isinstance(_toy(), base.Experiment)
    assert [f.name for f in base.options(Config)] == ["steps", "etas", "dtype", "fail"]


def test_defaults_quick_toml_and_flags_in_that_order(tmp_path, monkeypatch):
    monkeypatch.delenv("MINSTAB_QUICK", raising=False)
    mod = _toy()
    assert base.config_from_args(mod, _parse(mod, [])) == Config()
    assert base.config_from_args(mod, _parse(mod, ["--quick"])).steps == 10
    toml = tmp_path / "c.toml"
    toml.write_text("steps = 50\nthreshold = 0.25\netas = [0.3]\n")
    c = base.config_from_args(mod, _parse(mod, ["--quick", "--config", str(toml)]))
    assert (c.steps, c.threshold, c.etas) == (50, 0.25, (0.3,))
    c = base.config_from_args(mod, _parse(mod, ["--config", str(toml), "--steps", "7"]))
    assert (c.steps, c.threshold) == (7, 0.25)
    assert base.config_from_args(mod, _parse(mod, ["--fail"])).fail is True


@pytest.mark.parametrize(
    "argv, toml, expected",
    [(["--steps", "2000"], None, "--steps: expected at most 1000, got 2000"),
     ([], "steps = 2000", "--config: steps: expected at most 1000, got 2000"),
     ([], "steps = 2.5", "steps"), ([], "nope = 1", "unknown key nope")],
)  # fmt: skip
def test_a_bad_value_names_the_flag_or_the_key(argv, toml, expected, tmp_path):
    mod = _toy()
    if toml is not None:
        (tmp_path / "c.toml").write_text(toml + "\n")
        argv = [*argv, "--config", str(tmp_path / "c.toml")]
    with pytest.raises(UsageError, match=expected):
        base.config_from_args(mod, _parse(mod, argv))


@pytest.mark.parametrize("argv", [["--steps", "0x"], ["--dtype", "float16"], ["--etas", "-1"]])
def test_a_bad_flag_text_exits_2_while_parsing(argv, capsys):
    with pytest.raises(SystemExit) as e:
        _parse(_toy(), argv)
    assert e.value.code == 2
    assert argv[0] in capsys.readouterr().err


@pytest.mark.parametrize("fail, status", [(False, 0), (True, 1)])
def test_main_writes_json_prints_and_exits_by_the_checks(fail, status, tmp_path, capsys,
                                                         monkeypatch):  # fmt: skip
    monkeypatch.delenv("MINSTAB_QUICK", raising=False)
    mod = _toy()
    argv = ["--out", str(tmp_path), "--dtype", "float32", "--quiet"] + (["--fail"] if fail else [])
    assert base.main(mod, _parse(mod, argv)) == status
    out = json.loads((tmp_path / "toy.json").read_text())
    assert out["sum"] == pytest.approx(100 * 0.3)
    assert out["checks"]["holds"]["holds"] is (not fail)
    assert out["verdicts"]["shown"]["verdict"] == "reproduced"
    assert "sum 30" in capsys.readouterr().out
    # the run saw the config's precision; the caller's is restored afterwards
    import jax

    assert mod.calls[0][1] is False and jax.config.jax_enable_x64


def test_preflight_failure_names_the_flag(monkeypatch):
    monkeypatch.delenv("MINSTAB_QUICK", raising=False)
    mod = _toy()

    def preflight(config):
        if config.steps == 7:
            raise ValueError("steps: expected data for 7 steps, found none")

    mod.preflight = preflight
    assert base.config_from_args(mod, _parse(mod, ["--steps", "8"])).steps == 8
    with pytest.raises(UsageError, match="^--steps: expected data for 7 steps"):
        base.config_from_args(mod, _parse(mod, ["--steps", "7"]))


def test_seeds_as_a_count_or_a_list():
    parse = base.seed_count()
    assert parse("3") == 3 and parse(3) == 3 and parse([4, 7]) == (4, 7)
    assert base.seed_tuple(parse("3")) == (0, 1, 2) and base.seed_tuple((4, 7)) == (4, 7)
    assert base.seed_count(0)("0") == 0 and base.seed_tuple(0) == ()
    import argparse

    for bad in ("0", "-1", "2.5", [], [1, -2], True):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


# ----------------------------------------------------------------------------- optional hooks
@dataclasses.dataclass(frozen=True)
class _Aliased:
    boost: float = base.option(3.0, "boost factor", flag="--factor")

    def __post_init__(self):
        if self.boost <= 1:
            raise ValueError(f"boost: expected a number > 1, got {self.boost}")

    @classmethod
    def quick(cls, **kw):
        """Same."""
        return cls(**kw)


def test_a_flag_older_than_its_field_keeps_its_name(tmp_path):
    mod = types.SimpleNamespace(NAME="alias", Config=_Aliased)
    assert base.config_from_args(mod, _parse(mod, ["--factor", "2"])).boost == 2.0
    p = cli._Parser(prog="alias")
    base.add_arguments(p, mod)
    assert "--factor FACTOR" in p.format_help()
    with pytest.raises(SystemExit):  # the field's own name is not a flag
        _parse(mod, ["--boost", "2"])
    with pytest.raises(UsageError, match=r"^--factor: expected a number > 1, got 0.5"):
        base.config_from_args(mod, _parse(mod, ["--factor", "0.5"]))
    (tmp_path / "c.toml").write_text("boost = 0.5\n")  # the TOML key is the field
    with pytest.raises(UsageError, match=r"^--config: boost: expected a number > 1"):
        base.config_from_args(mod, _parse(mod, ["--config", str(tmp_path / "c.toml")]))


def test_a_toml_value_obeys_the_choices_of_its_flag(tmp_path):
    (tmp_path / "c.toml").write_text('dtype = "float16"\n')
    mod = _toy()
    with pytest.raises(UsageError, match=r"dtype: expected one of 'float32', 'float64'"):
        base.config_from_args(mod, _parse(mod, ["--config", str(tmp_path / "c.toml")]))


def test_json_name_names_the_file_and_the_driver_adds_the_config(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MINSTAB_QUICK", raising=False)
    mod = _toy()
    mod.JSON_NAME = "summary"
    mod.to_json = lambda r: {"sum": r["sum"]}  # the driver writes the config
    assert base.main(mod, _parse(mod, ["--out", str(tmp_path), "--quiet"])) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    assert "summary.json" in capsys.readouterr().out
    out = json.loads((tmp_path / "summary.json").read_text())
    assert list(out)[:2] == ["config", "sum"] and out["config"]["etas"] == [0.1, 0.2]


def test_resume_computes_once_and_recomputes_a_foreign_record(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    path = tmp_path / "seeds" / "seed_0.json"
    kw = dict(encode=dict, decode=lambda d: {"value": d["value"]})
    assert base.resume(path, {"k": 1}, compute, **kw) == ({"value": 1}, False)
    assert base.resume(path, {"k": 1}, compute, **kw) == ({"value": 1}, True)
    assert base.resume(path, {"k": 2}, compute, **kw) == ({"value": 2}, False)  # foreign key
    path.write_text("{torn")
    assert base.resume(path, {"k": 2}, compute, **kw) == ({"value": 3}, False)
    assert base.resume(None, {"k": 2}, compute, **kw) == ({"value": 4}, False)
    assert json.loads(path.read_text()) == {"config": {"k": 2}, "value": 3}


def test_help_shows_an_empty_tuple_as_none():
    assert base._show(()) == "none" and base._show((0.5, 2)) == "0.5,2"


def test_save_writes_files_beside_the_json(tmp_path, capsys, monkeypatch):
    """``save`` writes files the figures and the JSON do not hold; the driver lists them."""
    monkeypatch.delenv("MINSTAB_QUICK", raising=False)
    mod = _toy()

    def save(result, out):
        path = out / "rows.txt"
        path.write_text(str(result["sum"]))
        return [path]

    mod.save = save
    assert base.main(mod, _parse(mod, ["--out", str(tmp_path), "--quiet"])) == 0
    assert float((tmp_path / "rows.txt").read_text()) == pytest.approx(30.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.txt", "toy.json"]
    assert "rows.txt" in capsys.readouterr().out.splitlines()[-1]  # the "wrote ..." line


@pytest.mark.parametrize("quiet", [False, True])
def test_own_progress_gets_whether_to_draw_instead_of_a_bar(quiet, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MINSTAB_QUICK", raising=False)
    mod = _toy()
    seen = []

    def run(config, *, out_dir=None, progress=None):
        seen.append(progress)
        return {"config": config, "sum": 1.0}

    mod.run, mod.OWN_PROGRESS = run, True
    argv = ["--out", str(tmp_path)] + (["--quiet"] if quiet else [])
    assert base.main(mod, _parse(mod, argv)) == 0
    assert seen == [not quiet]
    assert "toy" not in capsys.readouterr().err  # the driver drew no bar of its own


def test_stored_key_and_resume_reuse_a_record_of_the_same_protocol(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"value": 0.5 * len(calls)}

    key = base.stored_key(Config(), 3)
    assert key["seed"] == 3 and key["etas"] == [0.1, 0.2] and "seeds" not in key
    io = dict(encode=dict, decode=lambda d: {"value": d["value"]})
    path = tmp_path / "seeds" / "seed_3.json"
    assert base.resume(path, key, compute, **io) == ({"value": 0.5}, False)
    assert base.resume(path, key, compute, **io) == ({"value": 0.5}, True)
    assert len(calls) == 1 and json.loads(path.read_text())["config"] == key
    other = base.stored_key(Config(steps=7), 3)  # another protocol's record: computed again
    assert base.resume(path, other, compute, **io) == ({"value": 1.0}, False)
    path.write_text("{torn")
    assert base.resume(path, other, compute, **io)[1] is False
    assert base.resume(None, key, compute, **io) == ({"value": 2.0}, False)
    assert len(calls) == 4


def _commands():
    from minstab import experiments

    return {**{k: v[0] for k, v in experiments.available().items()},
            **{k: v[0] for k, v in cli.COMMANDS.items()}}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_is_an_experiment_on_the_driver(name):
    import importlib

    mod = importlib.import_module(_commands()[name])
    assert isinstance(mod, base.Experiment), name
    assert not hasattr(mod, "main") and not hasattr(mod, "add_arguments")  # the driver's job
    assert isinstance(mod.Config.quick(), mod.Config) and base.options(mod.Config)
    p = cli._Parser(prog=name)
    base.add_arguments(p, mod)  # every option builds a flag


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_of_every_command_refuses_garbage(name, monkeypatch):
    """A flag's text that is no value of any kind exits 2 (argparse) or raises UsageError."""
    import importlib

    monkeypatch.delenv("MINSTAB_QUICK", raising=False)
    mod = importlib.import_module(_commands()[name])
    parser = cli.build_parser()
    cmd = [name] if name in cli.COMMANDS else ["reproduce", name]
    for f in base.options(mod.Config):
        for text in ("@@", "-1"):
            with pytest.raises((SystemExit, UsageError)) as e:
                args = parser.parse_args([*cmd, base._flag(f), text])
                cli.check_arguments(args)
                base.config_from_args(mod, args)
            assert e.type is UsageError or e.value.code == 2, (name, f.name, text)
