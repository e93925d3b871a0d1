"""KD from a fixed weighting of frozen teachers: the weighting rules and the loss, against values computed by hand."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from diit_tf.backbones import build_backbone
from diit_tf.baselines import UniformKD, WeightedKD, quality_weights, static_weights, teacher_gains, teacher_logits


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ------------------------------------------------------------------------------------------------ teacher_gains
def test_auc_gain_is_auc_minus_one_half():
    labels = [0, 0, 1, 1]
    perfect, inverted = [0.0, 1.0, 2.0, 3.0], [3.0, 2.0, 1.0, 0.0]
    three_of_four = [0.0, 2.0, 1.0, 3.0]  # positives 1, 3 vs negatives 0, 2: 1>0, 1<2, 3>0, 3>2 -> AUC 3/4
    np.testing.assert_allclose(teacher_gains([perfect, inverted, three_of_four], labels, "auc"), [0.5, -0.5, 0.25])


def test_logloss_gain_is_the_entropy_of_the_click_rate_minus_the_log_loss():
    labels = [0, 1]  # click rate 1/2: chance log loss ln 2
    chance = [0.0, 0.0]
    good = [-np.log(3.0), np.log(3.0)]  # p(true class) = 3/4 for both rows: log loss -ln(3/4)
    bad = [np.log(3.0), -np.log(3.0)]  # p(true class) = 1/4
    np.testing.assert_allclose(teacher_gains([chance, good, bad], labels, "logloss"),
                               [0.0, np.log(2.0) + np.log(0.75), np.log(2.0) + np.log(0.25)], rtol=1e-12)


def test_gains_reject_bad_arguments():
    with pytest.raises(ValueError, match="quality"):
        teacher_gains([[0.0, 1.0]], [0, 1], "accuracy")
    with pytest.raises(ValueError, match="empty"):
        teacher_gains([[]], [], "auc")
    assert np.isnan(teacher_gains([[0.0, 1.0]], [1, 1], "auc")).all()  # one class: AUC undefined


# ----------------------------------------------------------------------------------------------- static_weights
GAINS = [0.5, -0.5, 0.25]


def test_uniform_and_best():
    np.testing.assert_allclose(static_weights(GAINS, "uniform"), [1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_array_equal(static_weights(GAINS, "best"), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(static_weights([0.1, 0.3, 0.3], "best"), [0.0, 1.0, 0.0])  # first on ties


def test_above_chance_is_proportional_to_the_positive_gains():
    np.testing.assert_allclose(static_weights(GAINS, "above_chance"), [0.5 / 0.75, 0.0, 0.25 / 0.75])
    np.testing.assert_allclose(static_weights([-0.1, -0.2], "above_chance"), [0.5, 0.5])  # nobody beats chance


def test_softmax_of_gains_over_temperature():
    e = np.exp([2.0, -2.0, 1.0])  # gains / 0.25
    np.testing.assert_allclose(static_weights(GAINS, "softmax", temperature=0.25), e / e.sum(), rtol=1e-12)
    np.testing.assert_allclose(static_weights(GAINS, "softmax", temperature=1e-4), [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(static_weights(GAINS, "softmax", temperature=1e6), [1 / 3] * 3, rtol=1e-5)


def test_quality_weights_are_the_softmax_of_the_auc_gains():
    labels = [0, 0, 1, 1]
    logits = [[0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 1.0, 3.0]]  # AUC 1 and 3/4: gains 0.5 and 0.25
    gains, weights = quality_weights(logits, labels, temperature=0.25)
    np.testing.assert_allclose(gains, [0.5, 0.25])
    np.testing.assert_allclose(weights, np.exp([2.0, 1.0]) / np.exp([2.0, 1.0]).sum(), rtol=1e-12)


def test_undefined_gains_count_as_chance():
    np.testing.assert_allclose(static_weights([np.nan, 0.2], "above_chance"), [0.0, 1.0])
    np.testing.assert_allclose(static_weights([np.nan, np.nan], "above_chance"), [0.5, 0.5])


def test_static_weights_reject_bad_arguments():
    with pytest.raises(ValueError, match="weighting"):
        static_weights(GAINS, "learned")
    with pytest.raises(ValueError, match="temperature"):
        static_weights(GAINS, "softmax", temperature=0.0)
    with pytest.raises(ValueError, match="empty"):
        static_weights([], "uniform")


# ---------------------------------------------------------------------------------------------------- the loss
def _constant_backbone(spec, name, logit):
    """A DNN whose logit is `logit` on every row (zero kernels, the logit bias set)."""
    model = build_backbone("dnn", spec, hidden_units=(4,), embedding_dim=2, name=name)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    model.get_layer("logit_dense").bias.assign([logit])
    return model


def _features(spec, n, seed=0):
    rng = np.random.default_rng(seed)
    feats = {name: rng.integers(0, b, n).astype(np.int64) for name, b in spec.categorical.items()}
    feats.update({name: rng.random(n).astype(np.float32) for name in spec.numeric})
    return feats


def test_weighted_kd_loss_by_hand(tiny_spec):
    teachers = [_constant_backbone(tiny_spec, "t0", 1.0), _constant_backbone(tiny_spec, "t1", -2.0)]
    student = _constant_backbone(tiny_spec, "s", 0.5)
    model = WeightedKD(teachers, student, beta=0.5, temperature=2.0, weights=[3.0, 1.0])  # normalised: 3/4, 1/4
    x_t, x_m = _features(tiny_spec, 2), _features(tiny_spec, 3, seed=1)
    y_t = np.array([1.0, 0.0], np.float32)
    loss, ce, kl = (float(v) for v in model.compute_kd_loss(x_t, y_t, x_m))

    z_bar, s, tau = 0.75 * 1.0 + 0.25 * -2.0, 0.5, 2.0  # 0.25
    ce_hand = (np.log1p(np.exp(-s)) + np.log1p(np.exp(s))) / 2  # BCE(1, σ(0.5)) and BCE(0, σ(0.5))
    p, q = _sigmoid(z_bar / tau), _sigmoid(s / tau)
    kl_hand = tau ** 2 * (p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)))
    assert ce == pytest.approx(ce_hand, rel=1e-5)
    assert kl == pytest.approx(kl_hand, rel=1e-4)
    assert loss == pytest.approx(ce_hand + 0.5 * kl_hand, rel=1e-5)


def test_teacher_weights_are_normalised_checked_and_used(tiny_spec):
    teachers = [_constant_backbone(tiny_spec, "t0", 1.0), _constant_backbone(tiny_spec, "t1", -2.0)]
    model = WeightedKD(teachers, _constant_backbone(tiny_spec, "s", 0.0))
    x = _features(tiny_spec, 4)
    np.testing.assert_allclose(model.ensemble_logit(x), np.full((4, 1), -0.5), rtol=1e-6)  # uniform by default
    np.testing.assert_allclose(model.set_teacher_weights([2.0, 6.0]), [0.25, 0.75])
    np.testing.assert_allclose(model.ensemble_logit(x), np.full((4, 1), 0.25 - 1.5), rtol=1e-6)
    model.set_teacher_weights([0.0, 1.0])  # one-hot: KD from that teacher alone
    np.testing.assert_allclose(model.ensemble_logit(x), np.full((4, 1), -2.0), rtol=1e-6)
    with pytest.raises(ValueError, match="one weight per teacher"):
        model.set_teacher_weights([1.0])
    with pytest.raises(ValueError, match="non-negative"):
        model.set_teacher_weights([-1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        model.set_teacher_weights([0.0, 0.0])


@pytest.mark.slow
def test_new_weights_reach_the_traced_train_step(tiny_spec):
    """The weights are a variable: changing them between fits changes what the compiled step distils."""
    teachers = [_constant_backbone(tiny_spec, "t0", 3.0), _constant_backbone(tiny_spec, "t1", -3.0)]
    student = _constant_backbone(tiny_spec, "s", 0.0)
    model = WeightedKD(teachers, student, beta=1.0, temperature=1.0, weights=[1.0, 0.0])
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x = _features(tiny_spec, 8)
    data = tf.data.Dataset.from_tensors(((x, np.full(8, 0.5, np.float32)), x))  # CE pulls towards 0 only
    bias = student.get_layer("logit_dense").bias
    model.fit(data, epochs=1, verbose=0)
    after_first = float(bias.numpy()[0])
    model.set_teacher_weights([0.0, 1.0])
    model.fit(data, epochs=1, verbose=0)
    assert after_first > 0.0, "distilling from the +3 teacher should raise the student's logit"
    assert float(bias.numpy()[0]) < after_first, "then distilling from the -3 teacher should lower it"


@pytest.mark.slow
def test_uniform_kd_is_weighted_kd_with_equal_weights(tiny_spec):
    teachers = [_constant_backbone(tiny_spec, "t0", 1.0), _constant_backbone(tiny_spec, "t1", 2.0),
                _constant_backbone(tiny_spec, "t2", 6.0)]
    model = UniformKD(teachers, _constant_backbone(tiny_spec, "s", 0.0))
    assert model.name == "kd_uniform"
    np.testing.assert_allclose(model.teacher_weights.numpy(), [1 / 3] * 3, rtol=1e-6)
    np.testing.assert_allclose(model.ensemble_logit(_features(tiny_spec, 2)), np.full((2, 1), 3.0), rtol=1e-6)


@pytest.mark.slow
def test_teacher_logits_in_chunks_equal_one_call(tiny_spec):
    teachers = [build_backbone("dnn", tiny_spec, hidden_units=(4,), embedding_dim=2, name=f"t{k}") for k in range(2)]
    x = _features(tiny_spec, 10)
    logits = teacher_logits(teachers, x, chunk=3)  # 3 + 3 + 3 + 1 rows
    for teacher, z in zip(teachers, logits):
        assert z.shape == (10,) and z.dtype == np.float64
        np.testing.assert_allclose(z, np.asarray(teacher(x)["logit"]).reshape(-1), rtol=1e-6)


def test_per_row_weights_in_the_mix_batch_replace_the_fixed_ones_by_hand(tiny_spec):
    """`x_m[ROW_WEIGHTS]` (B, K): row b distils from Σ_k W_bk z_k; the key never reaches the student."""
    from diit_tf.baselines import ROW_WEIGHTS
    teachers = [_constant_backbone(tiny_spec, "t0", 1.0), _constant_backbone(tiny_spec, "t1", -2.0)]
    model = WeightedKD(teachers, _constant_backbone(tiny_spec, "s", 0.5), beta=1.0, temperature=1.0)
    x_m = dict(_features(tiny_spec, 3, seed=1), **{ROW_WEIGHTS: np.array([[1, 0], [0, 1], [0.5, 0.5]], np.float32)})
    np.testing.assert_allclose(model.ensemble_logit(x_m), [[1.0], [-2.0], [-0.5]], rtol=1e-6)
    x_t, y_t = _features(tiny_spec, 2), np.array([1.0, 0.0], np.float32)
    _, _, kl = (float(v) for v in model.compute_kd_loss(dict(x_t, **{ROW_WEIGHTS: x_m[ROW_WEIGHTS][:2]}), y_t, x_m))
    q = _sigmoid(0.5)
    kl_rows = [p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)) for p in map(_sigmoid, (1.0, -2.0, -0.5))]
    assert kl == pytest.approx(np.mean(kl_rows), rel=1e-4)


def test_target_kd_adds_a_logit_spot_on_the_target_rows_from_the_fixed_weights_by_hand(tiny_spec):
    """`target_kd` λ: `ce + β·(KL(mix) + λ·KL(x_t))`, the target rows' teacher from the fixed weights even where the
    mix rows carry their own (kd_origin's per-row weights): mix row teachers 1.0, target rows 0.75·1 + 0.25·(-2)."""
    from diit_tf.baselines import ROW_WEIGHTS
    teachers = [_constant_backbone(tiny_spec, "t0", 1.0), _constant_backbone(tiny_spec, "t1", -2.0)]
    model = WeightedKD(teachers, _constant_backbone(tiny_spec, "s", 0.5), beta=0.5, temperature=2.0,
                       weights=[3.0, 1.0], target_kd=2.0)
    x_m = dict(_features(tiny_spec, 3, seed=1), **{ROW_WEIGHTS: np.array([[1, 0]] * 3, np.float32)})
    x_t, y_t = _features(tiny_spec, 2), np.array([1.0, 0.0], np.float32)
    loss, ce, kl = (float(v) for v in model.compute_kd_loss(x_t, y_t, x_m))
    tau, q = 2.0, _sigmoid(0.5 / 2.0)

    def kl_of(z):
        p = _sigmoid(z / tau)
        return tau ** 2 * (p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)))

    assert kl == pytest.approx(kl_of(1.0) + 2.0 * kl_of(0.25), rel=1e-4)
    assert loss == pytest.approx(ce + 0.5 * (kl_of(1.0) + 2.0 * kl_of(0.25)), rel=1e-5)
    model.target_kd = 0.0  # off: the mix's spot alone
    assert float(model.compute_kd_loss(x_t, y_t, x_m)[2]) == pytest.approx(kl_of(1.0), rel=1e-4)
    with pytest.raises(ValueError, match="target_kd"):
        WeightedKD(teachers, _constant_backbone(tiny_spec, "s2", 0.5), target_kd=-1.0)


def test_kd_options_and_their_bounds_are_checked_in_one_place():
    """WeightedKD and `--methods kd_static:...` ask `kd_option_problem`: a number (not a boolean) >= 0, > 0 for the
    temperature."""
    from diit_tf.baselines.kd import kd_option_problem
    assert kd_option_problem("beta", 0) is None and kd_option_problem("target_kd", 2.5) is None
    assert kd_option_problem("temperature", np.float32(0.5)) is None
    assert kd_option_problem("temperature", 0) == "`temperature` should be a number > 0. Received: 0"
    assert kd_option_problem("beta", -0.1) == "`beta` should be a number >= 0. Received: -0.1"
    assert kd_option_problem("target_kd", True) == "`target_kd` should be a number >= 0. Received: True"
    assert kd_option_problem("beta", "1") is not None and kd_option_problem("beta", float("nan")) is not None


def test_a_kd_variant_takes_its_options_over_the_hparams():
    """`kd_static:target_kd=1+beta=2` runs kd_static with those options over the run's `methods.kd_static`, and
    reads the hparams (learning rate, options) under kd_static's own name."""
    from diit_tf.simulation.methods import KDStatic, make_method, parse_methods
    method = make_method("kd_static:target_kd=1+beta=2")
    assert isinstance(method, KDStatic) and method.name == "kd_static:target_kd=1+beta=2"
    assert method.option_changes == {"target_kd": 1, "beta": 2} and make_method("kd_static").option_changes == {}
    assert parse_methods("kd_static,kd_static:target_kd=1") == ["base", "kd_static", "kd_static:target_kd=1"]
