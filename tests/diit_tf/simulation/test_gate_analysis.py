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
    with pytest.raises(ValueError, match="DIIT methods"):
        parse_variant("kd_uniform:beta=1")
    with pytest.raises(ValueError, match="key=value"):
        parse_variant("diit:gate_loss")
    # options are checked against the method's own form: the paper's form trains its gate through KD, so γ = 0 is
    # valid there, while the default form's gate would never learn
    assert parse_variant("diit_paper:gate_supervision=0") == ("diit_paper", {"gate_supervision": 0})
    with pytest.raises(ValueError, match="never learn"):
        parse_variant("diit:gate_supervision=0")


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
