"""The report's gate analysis: Spearman by hand, gate weights next to source quality, DIIT variant names."""
import math

import numpy as np
import pytest

from diit_tf.simulation.catalog import describe
from diit_tf.simulation.methods import make_method, parse_methods, parse_variant
from diit_tf.simulation.protocol import SimulationResult
from diit_tf.simulation.report import gate_vs_quality, spearman


def test_spearman_by_hand():
    assert spearman([0.1, 0.2, 0.3], [5, 6, 7]) == pytest.approx(1.0)
    assert spearman([0.1, 0.2, 0.3], [7, 6, 5]) == pytest.approx(-1.0)
    # ranks (0, 2, 1) vs (0, 1, 2): d = (0, 1, -1), rho = 1 - 6 * 2 / (3 * 8) = 0.5
    assert spearman([1, 3, 2], [10, 20, 30]) == pytest.approx(0.5)
    # a tie takes the average rank: (0.5, 0.5, 2) vs (0, 1, 2) -> Pearson of the ranks
    expected = np.corrcoef([0.5, 0.5, 2], [0, 1, 2])[0, 1]
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(expected)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def _result(notes):
    return SimulationResult(dataset="d", backbone="dnn", target_domain="t", seeds=[0, 1], methods=["base", "diit"],
                            periods=[1, 2, 3], insertion_period=2, records=[], train_seconds=[], events=[],
                            hparams={}, notes=notes)


def test_gate_vs_quality_averages_periods_then_ranks():
    notes = {
        "source_quality": {"0": {"2": {"a": 0.70, "b": 0.60, "c": 0.50}, "3": {"a": 0.72, "b": 0.58, "c": 0.52}},
                           "1": {"2": {"a": 0.70, "b": 0.60, "c": 0.50}}},
        "training_diagnostics": {
            "diit": {"0": {"2": {"gate_w0": 0.5, "gate_w1": 0.3, "gate_w2": 0.2},
                           "3": {"gate_w0": 0.4, "gate_w1": 0.4, "gate_w2": 0.2}},
                     "1": {"2": {"gate_w0": 0.2, "gate_w1": 0.3, "gate_w2": 0.5}}},
            "diit_no_gate": {"0": {"2": {"gate_w0": 1 / 3, "gate_w1": 1 / 3, "gate_w2": 1 / 3}}},
        },
    }
    analysis = gate_vs_quality(_result(notes))
    assert set(analysis) == {"diit"}  # a uniform gate has nothing to rank
    seed0 = analysis["diit"]["per_seed"]["0"]
    assert seed0["gate"] == pytest.approx([0.45, 0.35, 0.2])
    assert seed0["quality"] == pytest.approx([0.71, 0.59, 0.51])
    assert seed0["spearman"] == pytest.approx(1.0)
    assert analysis["diit"]["per_seed"]["1"]["spearman"] == pytest.approx(-1.0)
    assert analysis["diit"]["spearman_mean"] == pytest.approx(0.0)
    assert analysis["diit"]["sources"] == ["a", "b", "c"]


def test_diit_variants_are_named_by_their_options():
    assert parse_variant("diit") is None
    assert parse_variant("diit:gate_loss=confidence+gate_from_kd=false+gate_supervision=1") == (
        "diit", {"gate_loss": "confidence", "gate_from_kd": False, "gate_supervision": 1})
    method = make_method("diit_no_adv:middle_spot=student")
    assert method.name == "diit_no_adv:middle_spot=student"
    assert method.changes == {"use_adversarial": False, "middle_spot": "student"}
    assert parse_methods("diit:adversary=domain,kd_uniform") == ["base", "diit:adversary=domain", "kd_uniform"]
    assert "with adversary=domain" in describe("diit:adversary=domain")
    with pytest.raises(ValueError, match="gate_los"):
        parse_variant("diit:gate_los=confidence")
    with pytest.raises(ValueError, match="DIIT methods"):  # a method that takes no options
        parse_variant("base:beta=1")
    assert parse_variant("kd_uniform:beta=1") == ("kd_uniform", {"beta": 1})  # the KD methods' own options
    with pytest.raises(ValueError, match="key=value"):
        parse_variant("diit:gate_loss")
    # options are checked against the method's own form: the paper's form trains its gate through KD, so γ = 0 is
    # valid there, while the default form's gate would never learn
    assert parse_variant("diit_paper:gate_supervision=0") == ("diit_paper", {"gate_supervision": 0})
    with pytest.raises(ValueError, match="never learn"):
        parse_variant("diit:gate_supervision=0")
    # a switch reads true / false (any case) as a bool, and refuses anything else naming the item and the option
    assert parse_variant("diit:use_gate=false+symmetric_adversarial=TRUE") == (
        "diit", {"use_gate": False, "symmetric_adversarial": True})
    with pytest.raises(ValueError, match=r"^--methods 'diit:use_gate=3': `use_gate` should be a bool\. Received: 3$"):
        parse_variant("diit:use_gate=3")
    with pytest.raises(ValueError, match=r"^--methods 'diit:use_gate=yes': `use_gate` should be a bool\. "
                                         r"Received: 'yes'$"):
        parse_variant("diit:use_gate=yes")
    with pytest.raises(ValueError, match=r"^--methods 'diit:alpha=none': `alpha` should be a number\. "
                                         r"Received: 'none'$"):
        parse_variant("diit:alpha=none")


def test_the_paper_form_keeps_its_structure_over_a_preset():
    from types import SimpleNamespace

    from diit_tf.simulation.hparams import Hparams

    preset = Hparams({"methods": {"diit": {"diit_config": {"beta2": 2.0, "gate_input": "embeddings"}}}})
    ctx = SimpleNamespace(hparams=preset)
    default = make_method("diit").resolve_config(ctx)
    assert (default.beta2, default.gate_input, default.gate_from_kd, default.use_middle) == (2.0, "embeddings", False,
                                                                                             False)
    paper = make_method("diit_paper").resolve_config(ctx)  # the preset's weights, the paper's structure
    assert (paper.beta2, paper.gate_input, paper.gate_from_kd, paper.gate_supervision) == (2.0, "representation",
                                                                                           True, 0.0)
    assert paper.use_middle and paper.use_adversarial
    assert make_method("diit_paper:gate_input=embeddings").resolve_config(ctx).gate_input == "embeddings"


@pytest.mark.slow
def test_gate_weights_are_split_by_row_group(tmp_path):
    from diit_tf.simulation.context import PeriodStore
    from diit_tf.simulation.hparams import Hparams
    from diit_tf.simulation.protocol import run_simulation

    from simulation_fixtures import TINY_HPARAMS, write_tiny_dataset

    data = write_tiny_dataset(tmp_path / "data", periods=3)
    groups = lambda d: np.where(d.features["item_id"] % 2 == 0, "even", "odd")  # noqa: E731
    result = run_simulation(PeriodStore(data), methods="base,diit,diit_no_gate", seeds=[0],
                            hparams=Hparams(TINY_HPARAMS), insertion_period=1, log=lambda line: None,
                            row_groups=groups)
    split = result.notes["gate_by_group"]
    assert set(split) == {"diit", "diit_no_gate"}  # methods with a gate; base has none
    for period in ("2", "3"):
        by_group = split["diit"]["0"][period]
        assert set(by_group) == {"even", "odd"}
        for weights in by_group.values():
            assert len(weights) == 2 and sum(weights) == pytest.approx(1.0, abs=1e-4)
        assert split["diit_no_gate"]["0"][period]["odd"] == pytest.approx([0.5, 0.5])
        routed = result.notes["routing"]["0"][period]  # the sources scored on the same rows, per group
        assert set(routed["by_group"]) == {"even", "odd"} and len(routed["by_group"]["odd"]) == 2
        assert routed["oracle"] == routed["uniform"]  # no group is named after a source: the oracle is the mean


def test_gate_by_group_averages_over_seeds_and_periods():
    from diit_tf.simulation.report import gate_by_group, gate_by_group_table

    notes = {"gate_by_group": {"diit": {"0": {"3": {"a": [0.8, 0.2], "b": [0.4, 0.6]}},
                                        "1": {"3": {"a": [0.6, 0.4]}, "4": {"a": [0.7, 0.3], "b": [0.2, 0.8]}}}}}
    split = gate_by_group(_result(notes))
    assert split["diit"]["a"] == pytest.approx([0.7, 0.3])
    assert split["diit"]["b"] == pytest.approx([0.3, 0.7])
    assert "| diit | b | 0.300 | 0.700 |" in gate_by_group_table(split, ["x", "y"])


def test_simulate_splits_the_gate_by_region_only_for_a_benchmark_with_regions(tmp_path):
    from diit_tf.commands.simulate import _row_groups
    from diit_tf.data.synthetic import SyntheticConfig, build_synthetic
    from diit_tf.simulation.context import PeriodStore

    small = dict(periods=2, rows_target=200, rows_source=(300, 300), users=80, items=60, seed=0)
    first = tuple(range(13)) + (15, 19, 28)  # no hash bucket of item_category holds categories of both halves
    halves = (first, tuple(c for c in range(32) if c not in first))
    quiet = dict(log=lambda line: None)
    regional = build_synthetic(tmp_path / "regional", SyntheticConfig(source_categories=halves, **small), **quiet)
    build_synthetic(tmp_path / "plain", SyntheticConfig(**small), **quiet)
    store = PeriodStore(tmp_path / "regional")
    rows = store.get(1).domain(store.spec.target)
    groups = _row_groups(tmp_path / "regional", store.spec)(rows)
    assert set(regional["ground_truth"]["relevance"]["regions"]) == {"source_a", "source_b"}
    assert len(groups) == len(rows) and set(groups) == {"source_a", "source_b"}  # no bucket holds both halves
    assert _row_groups(tmp_path / "plain", PeriodStore(tmp_path / "plain").spec) is None


def test_routing_ceiling_scores_each_source_per_group_and_the_oracle_by_hand(monkeypatch):
    from types import SimpleNamespace

    from diit_tf.simulation import protocol

    monkeypatch.setattr(protocol, "predict_logits", lambda model, features: np.asarray(model, float))
    # 8 rows: the first 4 in group "a" (where source a is relevant), the last 4 in group "b".
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    z_a = np.array([0.0, 1.0, 0.2, 0.9, 0.5, 0.4, 0.6, 0.3])  # right on group a, inverted on b
    z_b = np.array([0.9, 0.1, 0.8, 0.3, 0.0, 1.0, 0.1, 0.9])  # inverted on a, right on b
    ctx = SimpleNamespace(sources=SimpleNamespace(names=["a", "b"], latest=lambda: [z_a, z_b]))
    data = SimpleNamespace(labels=labels, features={})
    groups = np.array(["a"] * 4 + ["b"] * 4)
    out = protocol.routing_ceiling(ctx, data, groups)
    assert out["by_group"] == {"a": {"a": 1.0, "b": 0.0}, "b": {"a": 0.0, "b": 1.0}}
    assert out["oracle"] == 1.0  # each row from the source of its group: every positive above every negative
    # the mean logit: positives 0.55, 0.6, 0.7, 0.6; negatives 0.45, 0.5, 0.25, 0.35: all 16 pairs ordered
    assert out["uniform"] == 1.0
    one_class = protocol.routing_ceiling(ctx, SimpleNamespace(labels=np.ones(8), features={}), groups)
    assert math.isnan(one_class["oracle"]) and math.isnan(one_class["by_group"]["a"]["a"])


def test_routing_averages_seeds_and_periods_next_to_the_base_on_the_same_rows():
    from diit_tf.simulation.report import routing, routing_lines

    entry = lambda a, u, o: {"by_group": {"a": {"a": a, "b": 0.5}}, "uniform": u, "oracle": o}  # noqa: E731
    result = _result({"routing": {"0": {"3": entry(0.7, 0.6, 0.65)}, "1": {"3": entry(0.9, 0.7, 0.75)}}})
    result.records.extend([{"seed": 0, "period": 3, "method": "base", "auc": 0.8},
                           {"seed": 1, "period": 3, "method": "base", "auc": 0.7},
                           {"seed": 1, "period": 4, "method": "base", "auc": 0.1},  # no routing note: left out
                           {"seed": 0, "period": 3, "method": "diit", "auc": 0.9}])
    ceiling = routing(result)
    assert ceiling["by_group"] == {"a": pytest.approx({"a": 0.8, "b": 0.5})}
    assert (ceiling["uniform"], ceiling["oracle"], ceiling["base"]) == pytest.approx((0.65, 0.7, 0.75))
    text = "\n".join(routing_lines(ceiling))
    assert "| a | 0.8000 | 0.5000 |" in text and "oracle routing (each row from the source of its group) 0.7000" in text
    assert routing(_result({})) == {} and routing_lines({}) == []


@pytest.mark.slow
def test_the_quality_prior_is_set_each_period_from_the_sources_auc_on_the_target_rows(tmp_path):
    """`diit:gate_prior=quality`: each period's prior is softmax((AUC_k - 1/2) / t), AUC_k the frozen source's on
    the period's target rows, the same figure the protocol records as the source's quality."""
    from diit_tf.simulation.context import PeriodStore
    from diit_tf.simulation.hparams import Hparams
    from diit_tf.simulation.protocol import run_simulation

    from simulation_fixtures import TINY_HPARAMS, write_tiny_dataset

    name = "diit:gate_prior=quality+gate_prior_temperature=0.05"
    result = run_simulation(PeriodStore(write_tiny_dataset(tmp_path / "data", periods=3)), methods=f"base,{name}",
                            seeds=[0], hparams=Hparams(TINY_HPARAMS), insertion_period=1, log=lambda line: None)
    chosen = result.notes[name]["0"]
    assert set(chosen) == {"1", "2"}  # every period from the insertion on
    for period, entry in chosen.items():
        quality = result.notes["source_quality"]["0"][period]
        gains = np.array([quality[s] - 0.5 for s in quality])
        np.testing.assert_allclose(entry["auc_gain"], gains, atol=2e-5)
        expected = np.exp(gains / 0.05) / np.exp(gains / 0.05).sum()
        np.testing.assert_allclose(entry["prior"], expected, atol=2e-4)


@pytest.mark.slow
def test_the_gate_fit_runs_each_period_over_the_target_rows_and_is_recorded(tmp_path):
    """`diit:gate_fit_epochs=N`: before each period's training the gate alone makes N passes over the period's
    target rows (ceil(rows / batch) steps each); with a prior too, both are recorded for the period."""
    from diit_tf.simulation.context import PeriodStore
    from diit_tf.simulation.hparams import Hparams
    from diit_tf.simulation.protocol import run_simulation

    from simulation_fixtures import TINY_HPARAMS, write_tiny_dataset

    store = PeriodStore(write_tiny_dataset(tmp_path / "data", periods=3))
    name = "diit:gate_fit_epochs=3+gate_prior=quality"
    result = run_simulation(store, methods=f"base,{name}", seeds=[0], hparams=Hparams(TINY_HPARAMS),
                            insertion_period=1, log=lambda line: None)
    chosen = result.notes[name]["0"]
    batch = Hparams(TINY_HPARAMS).batch_size
    for period in ("1", "2"):
        rows = len(store.get(int(period)).domain(store.spec.target))
        assert chosen[period]["gate_fit_steps"] == 3 * -(-rows // batch)
        assert 0.0 < chosen[period]["gate_fit_bce"] < 2.0 and len(chosen[period]["prior"]) == 2


def test_the_plot_takes_more_methods_than_it_has_colours(tmp_path):
    from diit_tf.simulation.report import plot

    methods = ["base", "diit"] + [f"m{i}" for i in range(20)]  # 20 others, 16 colours
    result = _result({})
    result.methods = methods
    result.records.extend({"seed": 0, "period": p, "method": m, "auc": 0.6 + 0.001 * i}
                          for i, m in enumerate(methods) for p in (3, 4))
    plot(result, tmp_path / "auc.png")
    assert (tmp_path / "auc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
