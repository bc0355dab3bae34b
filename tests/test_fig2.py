import json

from minstab import cli


def test_reproduce_fig2_quick(tmp_path):
    assert cli.main(["reproduce", "fig2", "--quick", "--out", str(tmp_path)]) == 0
    for name in ("fig2_weights.png", "fig2_weights.pdf", "fig2.json"):
        assert (tmp_path / name).stat().st_size > 0
    dist = json.loads((tmp_path / "fig2.json").read_text())["sup_distance_empirical_vs_population"]
    for law, d in dist.items():
        errs = [d[k] for k in sorted(d, key=int)]
        # the empirical weight approaches the population weight as n grows
        assert errs[-1] < errs[0] / 3, (law, errs)
