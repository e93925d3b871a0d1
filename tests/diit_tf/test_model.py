"""DIITModel: the two-phase update, frozen teachers, the exported student, and clear errors on bad input."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from diit_tf.backbones import build_backbone
from diit_tf.config import DIITConfig
from diit_tf.losses import adversarial_bce
from diit_tf.model import DIITModel, make_diit_dataset

HIDDEN = dict(hidden_units=(16, 8), embedding_dim=4)


def _rows(n, seed):
    rng = np.random.default_rng(seed)
    x = {"user_id": rng.integers(0, 97, n), "item_id": rng.integers(0, 53, n), "price": rng.random(n).astype("float32")}
    # a learnable rule shared by all domains: users with an even id click
    y = ((x["user_id"] % 2 == 0) ^ (rng.random(n) < 0.1)).astype("float32")
    return x, y


def _trained_teacher(spec, k):
    teacher = build_backbone("dnn", spec, name=f"teacher_{k}", **HIDDEN)
    x, y = _rows(1500, seed=10 + k)
    model = keras.Model(teacher.inputs, teacher.output["logit"])
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.BinaryCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, batch_size=128, verbose=0)
    return teacher


@pytest.fixture(scope="module")
def spec():
    from diit_tf.features import FeatureSpec
    return FeatureSpec({"user_id": 97, "item_id": 53}, ("price",), domains=("t", "a", "b"), target="t")


@pytest.fixture(scope="module")
def teachers(spec):
    keras.utils.set_random_seed(7)
    return [_trained_teacher(spec, k) for k in range(2)]


def _model(spec, teachers, config=None, lr=1e-2, d_lr=1e-2, optimizer=keras.optimizers.Adam):
    student = build_backbone("dnn", spec, name="student", **HIDDEN)
    model = DIITModel(teachers, student, config or DIITConfig.paper(beta1=0.1, beta2=1.0))
    model.compile(optimizer=optimizer(lr), discriminator_optimizer=optimizer(d_lr))
    return model


def _dataset(batch_size=64):
    x_t, y_t = _rows(640, seed=1)
    x_m, _ = _rows(1280, seed=2)
    return make_diit_dataset(x_t, y_t, x_m, batch_size=batch_size)


def _snapshot(variables):
    return [v.numpy().copy() for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


@pytest.mark.slow
def test_fit_losses_finite_and_falling_and_teachers_bit_identical(spec, teachers):
    model = _model(spec, teachers)
    teacher_weights = [_snapshot(t.weights) for t in teachers]
    history = model.fit(_dataset(), epochs=4, verbose=0).history
    for name in ("loss", "ce", "adv1", "adv2", "mse", "kl", "kd"):
        assert np.all(np.isfinite(history[name])), name
    assert history["loss"][-1] < history["loss"][0]
    assert history["ce"][-1] < 0.9 * history["ce"][0]
    for before, teacher in zip(teacher_weights, teachers):
        assert not any(_changed(before, teacher.weights)), "a teacher weight changed"
    # the gate reports one mean weight per source, and they sum to 1
    assert abs(history["gate_w0"][-1] + history["gate_w1"][-1] - 1.0) < 1e-5
    x, y = _rows(500, seed=3)
    result = model.evaluate(x, y, batch_size=250, verbose=0, return_dict=True)
    assert isinstance(result["auc"], float) and result["auc"] > 0.8


def test_phase1_changes_only_the_discriminator(spec, teachers):
    # the main optimizer's learning rate is 0, so whatever moves is moved by phase 1's optimizer
    model = _model(spec, teachers, lr=0.0, optimizer=keras.optimizers.SGD)
    d_before, rest_before = _snapshot(model.phase1_variables), _snapshot(model.phase2_variables)
    model.fit(_dataset(), epochs=1, steps_per_epoch=3, verbose=0)
    assert all(_changed(d_before, model.phase1_variables))
    assert not any(_changed(rest_before, model.phase2_variables))


@pytest.mark.slow
def test_phase2_leaves_the_discriminator_unchanged(spec, teachers):
    # the discriminator optimizer's learning rate is 0: phase 2's gradients must not reach D
    model = _model(spec, teachers, d_lr=0.0, optimizer=keras.optimizers.SGD)
    d_before, rest_before = _snapshot(model.phase1_variables), _snapshot(model.phase2_variables)
    model.fit(_dataset(), epochs=1, steps_per_epoch=3, verbose=0)
    assert not any(_changed(d_before, model.phase1_variables))
    student_vars = model.student.trainable_variables
    assert any(_changed(rest_before[: len(student_vars)], student_vars))
    assert any(_changed(rest_before[len(student_vars):], model.phase2_variables[len(student_vars):]))


def test_phase_variables_partition_the_trainable_state(spec, teachers):
    model = _model(spec, teachers)
    phase1 = {id(v) for v in model.phase1_variables}
    phase2 = {id(v) for v in model.phase2_variables}
    teacher_vars = {id(v) for t in teachers for v in t.weights}
    assert phase1 and phase2 and not phase1 & phase2
    assert not teacher_vars & (phase1 | phase2)
    assert {id(v) for v in model.trainable_variables} == phase1 | phase2


@pytest.mark.slow
def test_student_alone_predicts_like_the_student_path(spec, teachers, tmp_path):
    model = _model(spec, teachers)
    model.fit(_dataset(), epochs=1, verbose=0)
    x, _ = _rows(50, seed=4)
    inside = model(x)["logit"].numpy()
    x_other, _ = _rows(30, seed=11)
    forward = model._forward(x_other, x, training=False)  # one stacked pass over target + mix rows
    np.testing.assert_allclose(forward["z_mix"].numpy(), inside, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(forward["z_target"].numpy(), model(x_other)["logit"].numpy(), rtol=1e-5, atol=1e-6)
    model.student.save(tmp_path / "student.keras")
    alone = keras.saving.load_model(tmp_path / "student.keras")
    np.testing.assert_allclose(alone(x)["logit"].numpy(), inside, rtol=1e-6)
    # the student holds nothing of the teachers, gate, mapper or discriminator
    assert alone.count_params() == model.student.count_params()
    names = {layer.name for layer in alone.layers}
    assert not names & {"gate", "mapper", "discriminator", "grl"}


@pytest.mark.slow
def test_ablation_switches_change_the_objective(spec, teachers):
    x_t, y_t = _rows(64, seed=5)
    x_m, _ = _rows(64, seed=6)
    full = _model(spec, teachers, DIITConfig.paper(alpha=0.5, beta1=0.1, beta2=1.0))
    forward = full._forward(x_t, x_m, training=False)
    losses = full.student_losses(tf.constant(y_t), forward)
    expected = losses["ce"] + 0.1 * losses["adv2"] + 1.0 * (0.5 * losses["mse"] + 0.5 * losses["kl"])
    np.testing.assert_allclose(losses["loss"].numpy(), expected.numpy(), rtol=1e-6)
    no_logit = _model(spec, teachers, DIITConfig.paper(use_logit=False, use_adversarial=False, beta2=1.0))
    no_logit.student.set_weights(full.student.get_weights())
    no_logit.mapper.set_weights(full.mapper.get_weights())
    no_logit.gate.set_weights(full.gate.get_weights())
    forward = no_logit._forward(x_t, x_m, training=False)
    losses2 = no_logit.student_losses(tf.constant(y_t), forward)
    assert "adv2" not in losses2
    np.testing.assert_allclose(losses2["loss"].numpy(), (losses2["ce"] + 0.5 * losses2["mse"]).numpy(), rtol=1e-6)
    uniform = _model(spec, teachers, DIITConfig.paper(use_gate=False))
    g = uniform._forward(x_t, x_m, training=False)["gate"].numpy()
    np.testing.assert_allclose(g, 0.5)


def _sigmoid_bce(y, z):
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


@pytest.mark.slow
def test_gate_supervision_adds_a_labelled_term(spec, teachers):
    model = _model(spec, teachers, DIITConfig(gate_supervision=1.0))
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(16, seed=13)
    forward = model._forward(x_t, x_m, training=False)
    # hand check: the labelled gate term is the BCE of the gate-weighted source logits of the target rows
    outs = [t(x_t)["logit"].numpy()[:, 0] for t in teachers]
    e_t = model.student(x_t)["representation"]
    g = model.gate.gate(e_t).numpy()
    z_bar = g[:, 0] * outs[0] + g[:, 1] * outs[1]
    np.testing.assert_allclose(forward["gate_target"].numpy(), g, rtol=1e-5, atol=1e-6)
    expected = _sigmoid_bce(y_t, z_bar).mean()
    np.testing.assert_allclose(model.gate_supervision_loss(tf.constant(y_t), forward).numpy(), expected, rtol=1e-5)
    assert forward["z_bar"].shape[0] == 16 and forward["gate"].shape == (16, 2)
    history = model.fit(_dataset(), epochs=1, steps_per_epoch=2, verbose=0).history
    assert np.isfinite(history["gate_bce"][0]) and history["gate_bce"][0] > 0


def test_confidence_gate_loss_by_hand(spec, teachers):
    """q_k = softmax_k(-BCE(y, σ(z_k)) / T) per row; the loss is mean_b Σ_k -q_k log g_k."""
    model = _model(spec, teachers, DIITConfig(gate_supervision=1.0, gate_loss="confidence", gate_temperature=0.5))
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(16, seed=13)
    forward = model._forward(x_t, x_m, training=False)
    z = np.stack([t(x_t)["logit"].numpy()[:, 0] for t in teachers], axis=1)
    losses = _sigmoid_bce(y_t[:, None], z) / 0.5
    q = np.exp(-losses) / np.exp(-losses).sum(axis=1, keepdims=True)
    g = model.gate.gate(model.student(x_t)["representation"]).numpy()
    expected = np.mean(-(q * np.log(g)).sum(axis=1))
    np.testing.assert_allclose(model.gate_supervision_loss(tf.constant(y_t), forward).numpy(), expected, rtol=1e-5)


def _gate_gradient(model, x_t, y_t, x_m, loss_name):
    with tf.GradientTape() as tape:
        losses = model.student_losses(tf.constant(y_t), model._forward(x_t, x_m, training=False))
    grads = tape.gradient(losses[loss_name], model.gate.trainable_variables)
    return [g for g in grads if g is not None]


@pytest.mark.slow
def test_gate_from_kd_false_keeps_kd_gradients_out_of_the_gate(spec, teachers):
    x_t, y_t = _rows(16, seed=12)
    x_m, _ = _rows(16, seed=13)
    paper = _model(spec, teachers, DIITConfig.paper(gate_supervision=1.0))
    assert any(np.abs(g.numpy()).sum() > 0 for g in _gate_gradient(paper, x_t, y_t, x_m, "kd"))
    supervised = _model(spec, teachers, DIITConfig.paper(gate_supervision=1.0, gate_from_kd=False))
    assert _gate_gradient(supervised, x_t, y_t, x_m, "kd") == []
    # ... while the supervised term still trains it, and the KD values are those of the same weights
    assert any(np.abs(g.numpy()).sum() > 0 for g in _gate_gradient(supervised, x_t, y_t, x_m, "gate_bce"))
    supervised.student.set_weights(paper.student.get_weights())
    supervised.gate.set_weights(paper.gate.get_weights())
    supervised.mapper.set_weights(paper.mapper.get_weights())
    a = paper.student_losses(tf.constant(y_t), paper._forward(x_t, x_m, training=False))
    b = supervised.student_losses(tf.constant(y_t), supervised._forward(x_t, x_m, training=False))
    np.testing.assert_allclose(a["kl"].numpy(), b["kl"].numpy(), rtol=1e-6)


def test_gate_reads_the_student_embeddings(spec, teachers):
    model = _model(spec, teachers, DIITConfig(gate_input="embeddings"))
    x_t, _ = _rows(4, seed=12)
    x_m, _ = _rows(6, seed=13)
    embeddings = model.student.get_layer("features")(x_m).numpy()
    assert embeddings.shape == (6, 2 * 4 + 1)  # two embedded ids of width 4, one numeric feature
    expected = model.gate.gate(tf.constant(embeddings)).numpy()
    np.testing.assert_allclose(model._forward(x_t, x_m, training=False)["gate"].numpy(), expected, rtol=1e-5,
                               atol=1e-6)


def test_student_side_middle_spot_by_hand(spec, teachers):
    """FitNets direction: Σ_k g_k · MSE(R_k(e_T), sg(e_Sk)), one regressor block per source; only the student
    and the mapper receive its gradient (the gate's weights are constants with gate_from_kd=False)."""
    model = _model(spec, teachers, DIITConfig.paper(middle_spot="student", gate_from_kd=False, gate_supervision=1.0))
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(16, seed=13)
    forward = model._forward(x_t, x_m, training=False)
    e_m = model.student(x_m)["representation"]
    g = model.gate.gate(e_m).numpy()
    reps = [t(x_m)["representation"].numpy() for t in teachers]
    regressed = model.mapper(e_m).numpy()
    d = reps[0].shape[1]
    assert regressed.shape == (16, 2 * d)
    per_source = np.stack([((regressed[:, k * d:(k + 1) * d] - reps[k]) ** 2).mean(axis=1) for k in range(2)], 1)
    expected = (g * per_source).sum(axis=1).mean()
    losses = model.student_losses(tf.constant(y_t), forward)
    np.testing.assert_allclose(losses["mse"].numpy(), expected, rtol=1e-5)
    assert _gate_gradient(model, x_t, y_t, x_m, "mse") == []


def test_domain_adversary_by_hand(spec, teachers):
    """D tells the student's representation of target rows (1) from mix rows (0); phase 2 reverses both."""
    model = _model(spec, teachers, DIITConfig.paper(adversary="domain", beta1=1.0))
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(16, seed=13)
    forward = model._forward(x_t, x_m, training=False)
    d_t = model.discriminator(model.student(x_t)["representation"]).numpy()
    d_m = model.discriminator(model.student(x_m)["representation"]).numpy()
    expected = np.log1p(np.exp(-d_t)).mean() + np.log1p(np.exp(d_m)).mean()
    np.testing.assert_allclose(model.discriminator_loss(forward).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(model.adversarial_loss(forward).numpy(), expected, rtol=1e-5)
    # through the reversal layer the student's gradient is the opposite of the plain gradient of the same loss
    with tf.GradientTape(persistent=True) as tape:
        fwd = model._forward(x_t, x_m, training=False)
        reversed_loss = model.adversarial_loss(fwd)
        plain_loss = model.discriminator_loss({"adv_real": fwd["adv_real"], "adv_fake": fwd["adv_fake"]})
    w = model.student.get_layer("deep_1").kernel  # on the representation's path
    g_rev = tape.gradient(reversed_loss, w)
    assert tape.gradient(plain_loss, w) is None  # phase 1 stops gradients into the student
    with tf.GradientTape() as tape2:
        fwd = model._forward(x_t, x_m, training=False)
        d_t = model.discriminator(fwd["adv_real"])
        d_m = model.discriminator(fwd["adv_fake"])
        direct = adversarial_bce(d_t, True) + adversarial_bce(d_m, False)
    np.testing.assert_allclose(g_rev.numpy(), -tape2.gradient(direct, w).numpy(), rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_every_variant_trains(spec, teachers):
    """Each option combination fits without error and keeps the teachers bit-identical."""
    before = [_snapshot(t.weights) for t in teachers]
    for config in (DIITConfig(gate_supervision=0.5, gate_loss="confidence", gate_from_kd=False,
                              gate_input="embeddings"),
                   DIITConfig(middle_spot="student", adversary="domain"),
                   DIITConfig(middle_spot="student", symmetric_adversarial=True)):
        history = _model(spec, teachers, config).fit(_dataset(), epochs=1, steps_per_epoch=2, verbose=0).history
        assert all(np.isfinite(v[0]) for v in history.values())
    for t, b in zip(teachers, before):
        assert all(np.array_equal(x, y) for x, y in zip(b, _snapshot(t.weights)))


# ---------------------------------------------------------------- bad input
@pytest.mark.slow
def test_default_form_is_logit_kd_through_the_supervised_gate_by_hand(spec, teachers):
    """`DIITConfig()`: loss = CE + β2·(1-α)·KL + γ·gate BCE; no middle spot, no adversary, and the mapper and the
    discriminator are neither built nor trained."""
    cfg = DIITConfig(beta2=2.0, alpha=0.25, gate_supervision=0.5)
    assert (cfg.use_middle, cfg.use_adversarial, cfg.gate_from_kd) == (False, False, False)
    model = _model(spec, teachers, cfg)
    assert not model.uses_mapper and model.phase1_variables == [] and model.mapper.trainable_variables == []
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(16, seed=13)
    forward = model._forward(x_t, x_m, training=False)
    losses = model.student_losses(tf.constant(y_t), forward)
    assert set(losses) == {"ce", "kl", "kd", "gate_bce", "loss"}
    # by hand: KL of the tempered Bernoullis (τ = 2, scaled by τ²) between the gated source logits and the student's
    g = model.gate.gate(model.student(x_m)["representation"]).numpy()
    z_s = [t(x_m)["logit"].numpy()[:, 0] for t in teachers]
    z_bar = g[:, 0] * z_s[0] + g[:, 1] * z_s[1]
    z_st = model.student(x_m)["logit"].numpy()[:, 0]
    p, q = 1 / (1 + np.exp(-z_bar / 2)), 1 / (1 + np.exp(-z_st / 2))
    kl = 4 * np.mean(p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q)))
    np.testing.assert_allclose(losses["kl"].numpy(), kl, rtol=1e-4)
    ce = _sigmoid_bce(y_t, model.student(x_t)["logit"].numpy()[:, 0]).mean()
    expected = ce + 2.0 * 0.75 * kl + 0.5 * losses["gate_bce"].numpy()
    np.testing.assert_allclose(losses["loss"].numpy(), expected, rtol=1e-4)
    history = model.fit(_dataset(), epochs=1, steps_per_epoch=2, verbose=0).history
    assert {"loss", "ce", "kl", "kd", "gate_bce"} <= set(history)
    assert not {"adv1", "adv2", "mse"} & set(history)


def test_a_gate_that_could_never_learn_is_refused():
    with pytest.raises(ValueError, match="never learn"):
        DIITConfig(gate_supervision=0.0)
    DIITConfig(gate_supervision=0.0, use_gate=False)  # no gate: nothing to learn
    assert DIITConfig.paper().gate_supervision == 0.0 and DIITConfig.paper().use_middle


def test_no_sources_is_a_clear_error(spec):
    with pytest.raises(ValueError, match="K=0"):
        DIITModel([], build_backbone("dnn", spec, **HIDDEN))


@pytest.mark.parametrize("tau", [-1.0, 0.0])
def test_non_positive_temperature_is_a_clear_error(tau):
    with pytest.raises(ValueError, match="tau"):
        DIITConfig(tau=tau)


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="betta"):
        DIITConfig.from_dict({"betta": 1.0})


def _bad_fit(model, x_t):
    y = np.zeros(len(next(iter(x_t.values()))), "float32")
    x_m, _ = _rows(64, seed=8)
    ds = tf.data.Dataset.from_tensor_slices(((x_t, y), {k: v[: len(y)] for k, v in x_m.items()})).batch(8)
    model.fit(ds, epochs=1, verbose=0)


def test_missing_feature_is_named(spec, teachers):
    x, _ = _rows(16, seed=9)
    del x["item_id"]
    with pytest.raises(ValueError, match="missing feature.*item_id"):
        _bad_fit(_model(spec, teachers), x)


@pytest.mark.slow
def test_wrong_dtype_is_named(spec, teachers):
    x, _ = _rows(16, seed=9)
    x["user_id"] = x["user_id"].astype("float32")
    with pytest.raises(ValueError, match="user_id.*dtype int64"):
        _bad_fit(_model(spec, teachers), x)


def test_wrong_shape_is_named(spec, teachers):
    x, _ = _rows(16, seed=9)
    x["price"] = x["price"].reshape(-1, 1)
    with pytest.raises(ValueError, match="price.*shape"):
        _bad_fit(_model(spec, teachers), x)


def test_wrong_batch_structure_is_explained(spec, teachers):
    x, y = _rows(16, seed=9)
    with pytest.raises(ValueError, match=r"\(\(target_features, target_labels\), mix_features\)"):
        _model(spec, teachers).fit(x, y, epochs=1, verbose=0)


def test_a_non_backbone_is_rejected(spec, teachers):
    plain = keras.Sequential([keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="representation"):
        DIITModel(teachers, plain)


def test_config_widths_accept_an_int_and_reject_nonsense():
    assert DIITConfig(mapper_hidden=64).mapper_hidden == (64,)
    assert DIITConfig(discriminator_hidden=[32, 16]).discriminator_hidden == (32, 16)
    with pytest.raises(ValueError, match="mapper_hidden"):
        DIITConfig(mapper_hidden=())
    with pytest.raises(ValueError, match="discriminator_hidden"):
        DIITConfig(discriminator_hidden=(8, 0))
    assert DIITConfig.from_dict(DIITConfig(beta2=2.0).to_dict()) == DIITConfig(beta2=2.0)
    with pytest.raises(ValueError, match=r"^`mapper_hidden` should be a positive integer or a non-empty sequence of "
                                         r"them\. Received: 3\.5$"):  # was a TypeError (a float is no sequence)
        DIITConfig(mapper_hidden=3.5)
    with pytest.raises(ValueError, match=r"^`gate_hidden` should be a positive integer\. Received: True$"):
        DIITConfig(gate_hidden=True)  # JSON true was taken for a width of 1


def test_every_numeric_option_refuses_a_non_number_and_a_boolean_naming_it():
    """The float fields, by their declared type: a string was a TypeError ("'>=' not supported between instances of
    'str' and 'int'") and True passed as 1; each is now one sentence naming the field."""
    from diit_tf.config import NUMBER_FIELDS

    assert NUMBER_FIELDS == ("alpha", "beta1", "beta2", "tau", "grl_lambda", "gate_supervision", "gate_temperature",
                             "gate_origin", "gate_prior_temperature", "gate_fit_learning_rate", "routing_temperature",
                             "target_kd")
    for name in NUMBER_FIELDS:
        for bad in ("abc", "0.5", True, None, [1]):
            with pytest.raises(ValueError) as info:
                DIITConfig(**{name: bad})
            assert str(info.value) == f"`{name}` should be a number. Received: {bad!r}"
    # ints and NumPy numbers are numbers; the bounds are checked after the type, as before
    assert DIITConfig(alpha=1, tau=np.float32(3.0), target_kd=2).tau == 3.0
    with pytest.raises(ValueError, match=r"^`target_kd` should be >= 0\. Received: -1$"):
        DIITConfig(target_kd=-1)
    with pytest.raises(ValueError, match=r"^`tau` \(temperature\) should be > 0\. Received: 0$"):
        DIITConfig(tau=0)


def test_every_switch_takes_a_bool_only():
    from diit_tf.config import BOOL_FIELDS

    assert BOOL_FIELDS == ("symmetric_adversarial", "use_gate", "use_adversarial", "use_middle", "use_logit",
                           "gate_from_kd", "gate_calibration", "route_by_origin")
    for name in BOOL_FIELDS:
        for bad in (3, 1, 0, "false", None):  # 1 and 0 too: a switch is true or false, not a count
            with pytest.raises(ValueError) as info:
                DIITConfig(**{name: bad})
            assert str(info.value) == f"`{name}` should be a bool. Received: {bad!r}"
        assert getattr(DIITConfig(**{name: True}), name) is True and getattr(DIITConfig(**{name: False}), name) is False


@pytest.mark.slow
def test_precomputed_teacher_outputs_give_the_same_step(spec, teachers):
    """Rows that carry the teachers' outputs (`teacher_outputs`) train exactly as rows the step runs the teachers
    on, with gate supervision (target rows) and without."""
    for config in (DIITConfig(gate_supervision=1.0, middle_spot="student"), DIITConfig()):
        keras.utils.set_random_seed(3)
        plain = _model(spec, teachers, config)
        keras.utils.set_random_seed(3)
        fed = _model(spec, teachers, config)
        fed.set_weights(plain.get_weights())
        x_t, y_t = _rows(64, seed=21)
        x_m, _ = _rows(64, seed=22)
        annotated_t = dict(x_t, **fed.teacher_outputs(x_t, batch_size=40))  # several batches, in order
        annotated_m = dict(x_m, **fed.teacher_outputs(x_m))
        assert annotated_m["teacher_logits"].shape == (64, 2)
        assert annotated_m["teacher_representations"].shape == (64, 2 * teachers[0].output["representation"].shape[-1])
        a = plain.student_losses(tf.constant(y_t), plain._forward(x_t, x_m, training=False))
        b = fed.student_losses(tf.constant(y_t), fed._forward(annotated_t, annotated_m, training=False))
        for name in a:
            np.testing.assert_allclose(b[name].numpy(), a[name].numpy(), rtol=1e-5, atol=1e-6)
        plain.fit(make_diit_dataset(x_t, y_t, x_m, batch_size=32), epochs=1, verbose=0)
        fed.fit(make_diit_dataset(annotated_t, y_t, annotated_m, batch_size=32), epochs=1, verbose=0)
        for u, v in zip(plain.student.get_weights(), fed.student.get_weights()):
            np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)


def _gate_weights_with_sources(model, x):
    """The gate weights as a training step computes them: the student's query and every source's outputs."""
    _, _, query = model._student_pass(x, False)
    reps, logits = model._teachers(x)
    return keras.ops.convert_to_numpy(model.gate.gate(model.gate.query(query, reps, logits)))


def _counting_teachers(model, monkeypatch) -> list:
    calls, original = [], model._teachers
    monkeypatch.setattr(model, "_teachers", lambda x: calls.append(len(x["user_id"])) or original(x))
    return calls


@pytest.mark.parametrize("gate_input", ["representation", "embeddings"])
def test_gate_weights_do_not_run_the_sources_for_a_gate_that_ignores_them(spec, teachers, gate_input, monkeypatch):
    model = _model(spec, teachers, DIITConfig(gate_input=gate_input))
    x, _ = _rows(50, seed=3)
    expected = _gate_weights_with_sources(model, x)
    calls = _counting_teachers(model, monkeypatch)
    weights = model.gate_weights(x, batch_size=16)
    assert calls == []  # the library's gate reads the student alone
    assert weights.shape == (50, 2)
    np.testing.assert_allclose(weights, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(weights.sum(axis=1), np.ones(50), rtol=1e-6)


def test_gate_weights_run_the_sources_for_a_gate_that_reads_them(spec, teachers, monkeypatch):
    from diit_tf.simulation.variants import use_source_aware_gate

    model = DIITModel(teachers, build_backbone("dnn", spec, name="student", **HIDDEN), DIITConfig())
    use_source_aware_gate(model)
    x, _ = _rows(50, seed=3)
    expected = _gate_weights_with_sources(model, x)
    calls = _counting_teachers(model, monkeypatch)
    weights = model.gate_weights(x, batch_size=16)
    assert calls == [16, 16, 16, 2]  # 50 rows in chunks of 16
    np.testing.assert_allclose(weights, expected, rtol=1e-6, atol=1e-7)


def test_quality_prior_shifts_every_rows_gate_by_log_pi(spec, teachers):
    """softmax(s + log π) = π ⊙ e^s / Σ π e^s: the prior reweights each row's gate by π and renormalises."""
    model = _model(spec, teachers, DIITConfig(gate_prior="quality"))
    x, _ = _rows(20, seed=4)
    before = model.gate_weights(x)
    model.set_gate_prior([0.9, 0.1])
    after = model.gate_weights(x)
    expected = before * [0.9, 0.1]
    np.testing.assert_allclose(after, expected / expected.sum(axis=1, keepdims=True), rtol=1e-5)
    assert "prior_logits" not in [v.name for v in model.phase2_variables]
    assert not _model(spec, teachers, DIITConfig()).gate.prior  # no prior unless asked for
    assert DIITConfig.paper(gate_prior="quality").gate_prior == "quality" and DIITConfig.paper().gate_prior == "none"


@pytest.mark.parametrize("bad, field", [({"gate_prior": "auc"}, "gate_prior"),
                                        ({"gate_prior_temperature": 0.0}, "gate_prior_temperature")])
def test_bad_gate_prior_options_are_named(bad, field):
    with pytest.raises(ValueError, match=field):
        DIITConfig(**bad)


def test_fit_gate_takes_adams_first_step_on_the_mixture_loss_by_hand(spec, teachers):
    """Adam's first step (m = (1-β1)·g, v = (1-β2)·g², bias-corrected) moves each variable by
    -lr · g / (|g| + ε / sqrt(1-β2)), about -lr · sign(g) where g is not tiny; g is the gradient of
    BCE(y, σ(Σ_k g_k z_k)) written out here, with the gate's weights recomputed from its two dense layers."""
    lr = 0.01
    model = _model(spec, teachers, DIITConfig(gate_fit_epochs=1, gate_fit_learning_rate=lr))
    x, y = _rows(32, seed=21)
    z = np.stack([t(x)["logit"].numpy()[:, 0] for t in teachers], axis=1)
    e = model.student(x)["representation"].numpy()
    hidden, out = model.gate.gate_hidden, model.gate.gate_output
    variables = [hidden.kernel, hidden.bias, out.kernel, out.bias]
    assert {id(v) for v in model.gate_scoring_variables} == {id(v) for v in variables}
    w = [tf.Variable(v.numpy()) for v in variables]
    with tf.GradientTape() as tape:
        scores = tf.matmul(tf.nn.relu(tf.matmul(e, w[0]) + w[1]), w[2]) + w[3]
        g = tf.nn.softmax(scores, axis=-1)
        z_bar = tf.reduce_sum(g * z, axis=-1)
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z_bar))
    grads = tape.gradient(loss, w)
    before = _snapshot(variables)
    student_before = _snapshot(model.student.trainable_variables)
    teachers_before = [_snapshot(t.weights) for t in teachers]
    result = model.fit_gate(tf.data.Dataset.from_tensors((x, y)), epochs=1)
    assert result["steps"] == 1
    np.testing.assert_allclose(result["gate_bce"], loss.numpy(), rtol=1e-5)
    for b, v, grad in zip(before, variables, grads):
        expected = b - lr * grad.numpy() / (np.abs(grad.numpy()) + 1e-7 / np.sqrt(1 - 0.999))
        np.testing.assert_allclose(v.numpy(), expected, rtol=1e-4, atol=1e-6)
    assert not any(_changed(student_before, model.student.trainable_variables))
    assert not any(any(_changed(b, t.weights)) for b, t in zip(teachers_before, teachers))


def test_fit_gate_learns_to_route_rows_to_the_source_that_is_right_on_them(spec, teachers):
    """Two sources, each right on half of the rows (split by item id) and wrong on the other: after fitting, the
    gate (reading the student's input embeddings, which hold the item id) puts most weight on the right one."""
    keras.utils.set_random_seed(3)
    model = _model(spec, teachers, DIITConfig(gate_fit_epochs=1, gate_fit_learning_rate=0.03,
                                              gate_input="embeddings"))
    x, _ = _rows(2000, seed=22)
    y = (np.random.default_rng(5).random(2000) < 0.5).astype("float32")
    first_half = x["item_id"] < 27
    right, wrong = np.where(y > 0, 3.0, -3.0), np.where(y > 0, -3.0, 3.0)
    logits = np.stack([np.where(first_half, right, wrong), np.where(first_half, wrong, right)], axis=1)
    features = dict(x, teacher_logits=logits.astype("float32"),
                    teacher_representations=np.zeros((2000, sum(model.teacher_dims)), "float32"))
    data = tf.data.Dataset.from_tensor_slices((features, y)).shuffle(2000, seed=1).batch(100)
    result = model.fit_gate(data, epochs=100)
    assert result["steps"] == 2000 and result["gate_bce"] < 0.4  # uniform weights give BCE(y, 0) = ln 2 = 0.69
    g = model.gate_weights(x)
    assert g[first_half, 0].mean() > 0.8 and g[~first_half, 1].mean() > 0.8


def test_fit_gate_needs_the_option_and_the_option_needs_a_gate(spec, teachers):
    with pytest.raises(ValueError, match="gate_fit_epochs"):
        _model(spec, teachers, DIITConfig()).fit_gate(tf.data.Dataset.from_tensors(_rows(4, 1)), 1)
    with pytest.raises(ValueError, match="gate_fit_epochs"):  # no gate, nothing to fit
        _model(spec, teachers, DIITConfig(gate_fit_epochs=2, use_gate=False)).fit_gate(
            tf.data.Dataset.from_tensors(_rows(4, 1)), 1)
    assert DIITConfig.paper(gate_fit_epochs=5).gate_fit_epochs == 5 and DIITConfig.paper().gate_fit_epochs == 0
    assert _model(spec, teachers, DIITConfig()).learns_gate
    assert not _model(spec, teachers, DIITConfig(use_gate=False)).learns_gate
    assert not _model(spec, teachers[:1], DIITConfig()).learns_gate  # one source: its weight is 1
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="gate_fit_epochs"):
            DIITConfig(gate_fit_epochs=bad)
    with pytest.raises(ValueError, match="gate_fit_learning_rate"):
        DIITConfig(gate_fit_learning_rate=0.0)


def test_gate_calibration_maps_the_mixed_logit_in_the_gate_loss_only_by_hand(spec, teachers):
    """gate_calibration: the mixture loss is BCE(y, σ(a · Σ_k g_k z_k + b)); KD's aggregate is untouched."""
    model = _model(spec, teachers, DIITConfig(gate_calibration=True, gate_fit_epochs=1))
    model.gate_calibration.kernel.assign([[2.0]])
    model.gate_calibration.bias.assign([-0.5])
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(16, seed=13)
    forward = model._forward(x_t, x_m, training=False)
    z = np.stack([t(x_t)["logit"].numpy()[:, 0] for t in teachers], axis=1)
    g = model.gate.gate(model.student(x_t)["representation"]).numpy()
    expected = _sigmoid_bce(y_t, 2.0 * (g * z).sum(axis=1) - 0.5).mean()
    np.testing.assert_allclose(model.gate_supervision_loss(tf.constant(y_t), forward).numpy(), expected, rtol=1e-5)
    z_m = np.stack([t(x_m)["logit"].numpy()[:, 0] for t in teachers], axis=1)
    g_m = model.gate.gate(model.student(x_m)["representation"]).numpy()
    np.testing.assert_allclose(forward["z_bar"].numpy()[:, 0], (g_m * z_m).sum(axis=1), rtol=1e-5, atol=1e-6)
    calibration = model.gate_calibration.trainable_variables
    assert all(any(v is w for w in model.phase2_variables) for v in calibration)
    assert all(any(v is w for w in model.gate_scoring_variables) for v in calibration)
    before = _snapshot(calibration)
    model.fit_gate(tf.data.Dataset.from_tensors((x_t, y_t)), epochs=1)
    assert all(_changed(before, calibration))
    assert _model(spec, teachers, DIITConfig()).gate_calibration is None
    assert DIITConfig.paper(gate_calibration=True).gate_calibration and not DIITConfig.paper().gate_calibration
    with pytest.raises(ValueError, match="gate_calibration"):
        DIITConfig(gate_calibration="yes")


def _sources_and_gate(model, teachers, x, temperature):
    """By hand on rows `x`: the teachers' logits (B, K), the gate's weights on the student's representation, and
    those weights sharpened by `temperature`, g^(1/T) / Σ g^(1/T)."""
    z = np.stack([t(x)["logit"].numpy()[:, 0] for t in teachers], axis=1)
    g = model.gate.gate(model.student(x)["representation"]).numpy()
    sharp = g ** (1.0 / temperature)
    return z, g, sharp / sharp.sum(axis=1, keepdims=True)


def test_routing_temperature_sharpens_the_weights_kd_mixes_by_hand(spec, teachers):
    """routing_temperature T: KD mixes the sources with g_k^(1/T) / Σ_j g_j^(1/T); the gate's own weights and its
    supervised loss are the unsharpened ones."""
    from diit_tf.model import sharpened
    np.testing.assert_allclose(sharpened(tf.constant([[0.7, 0.3], [0.5, 0.5]]), 0.5).numpy(),
                               [[0.49 / 0.58, 0.09 / 0.58], [0.5, 0.5]], rtol=1e-5)
    np.testing.assert_allclose(sharpened(tf.constant([[0.2, 0.0, 0.8]]), 0.25).numpy(),
                               [[0.2 ** 4 / (0.2 ** 4 + 0.8 ** 4), 0.0, 0.8 ** 4 / (0.2 ** 4 + 0.8 ** 4)]], rtol=1e-5)
    model = _model(spec, teachers, DIITConfig(routing_temperature=0.5))
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(16, seed=13)
    forward = model._forward(x_t, x_m, training=False)
    z_m, g_m, sharp = _sources_and_gate(model, teachers, x_m, 0.5)
    np.testing.assert_allclose(forward["gate"].numpy(), g_m, rtol=1e-5)
    np.testing.assert_allclose(forward["z_bar"].numpy()[:, 0], (sharp * z_m).sum(axis=1), rtol=1e-5, atol=1e-6)
    z_t, g_t, _ = _sources_and_gate(model, teachers, x_t, 0.5)
    np.testing.assert_allclose(model.gate_supervision_loss(tf.constant(y_t), forward).numpy(),
                               _sigmoid_bce(y_t, (g_t * z_t).sum(axis=1)).mean(), rtol=1e-5)
    assert DIITConfig.paper().routing_temperature == 1.0
    with pytest.raises(ValueError, match="routing_temperature"):
        DIITConfig(routing_temperature=0.0)


def test_logit_kd_form_trains_as_weighted_kd_with_one_teacher(spec, teachers):
    """`DIITConfig.logit_kd(β, τ)` with one teacher (the pipeline's joint teacher) takes the same steps as the
    simulation's `kd_joint` student (`WeightedKD`, CE + β·KL): same start, same batches, same student weights."""
    from diit_tf.baselines.kd import WeightedKD

    students = [build_backbone("dnn", spec, name=f"student_{k}", **HIDDEN) for k in range(2)]
    students[1].set_weights(students[0].get_weights())
    start = _snapshot(students[0].weights)
    diit = DIITModel(teachers[:1], students[0], DIITConfig.logit_kd(3.0, tau=1.5))
    diit.compile(optimizer=keras.optimizers.SGD(0.1))
    kd = WeightedKD(teachers[:1], students[1], beta=3.0, temperature=1.5)
    kd.compile(optimizer=keras.optimizers.SGD(0.1))
    assert not diit.uses_mapper and not diit.learns_gate
    x_t, y_t = _rows(16, seed=21)
    x_m, _ = _rows(32, seed=22)
    loss = diit.student_losses(tf.constant(y_t), diit._forward(x_t, x_m, training=False))["loss"]
    np.testing.assert_allclose(loss.numpy(), kd.compute_kd_loss(x_t, tf.constant(y_t), x_m)[0].numpy(), rtol=1e-5)
    for model in (diit, kd):
        model.fit(_dataset(batch_size=32), epochs=1, steps_per_epoch=3, verbose=0)
    for a, b in zip(students[0].get_weights(), students[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(start, students[0].get_weights()))  # it did train


def test_gate_origin_adds_the_gates_cross_entropy_on_the_mix_rows_sources_by_hand(spec, teachers):
    """total = ce + β2·kd + γ·gate_bce + gate_origin · mean_{rows with a source} -log g_{source}(x_m)."""
    from diit_tf.model import ORIGIN_KEY
    model = _model(spec, teachers, DIITConfig(gate_origin=2.0, gate_supervision=0.5))
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(6, seed=13)
    x_m[ORIGIN_KEY] = np.array([0, 1, -1, 1, 0, 0], np.int32)
    forward = model._forward(x_t, x_m, training=False)
    losses = model.student_losses(tf.constant(y_t), forward)
    g_m = model.gate.gate(model.student({k: v for k, v in x_m.items() if k != ORIGIN_KEY})["representation"]).numpy()
    picked = [g_m[0, 0], g_m[1, 1], g_m[3, 1], g_m[4, 0], g_m[5, 0]]
    np.testing.assert_allclose(losses["origin"].numpy(), -np.mean(np.log(picked)), rtol=1e-5)
    np.testing.assert_allclose(losses["loss"].numpy(), (losses["ce"] + 0.5 * losses["kd"] + 0.5 * losses["gate_bce"]
                                                        + 2.0 * losses["origin"]).numpy(), rtol=1e-5)
    # the origin loss alone trains the gate (no labelled gate loss, no KD into the gate) and moves it
    model = _model(spec, teachers, DIITConfig(gate_origin=1.0, gate_supervision=0.0))
    before = _snapshot(model.gate.trainable_variables)
    x_m, _ = _rows(1280, seed=2)
    x_m[ORIGIN_KEY] = (x_m["item_id"] % 2).astype(np.int32)
    x_t, y_t = _rows(640, seed=1)
    history = model.fit(make_diit_dataset(x_t, y_t, x_m, batch_size=64), epochs=1, verbose=0).history
    assert np.isfinite(history["origin"][0]) and "gate_bce" not in history
    assert any(_changed(before, model.gate.trainable_variables))


def test_with_a_prior_the_origin_loss_reads_the_scores_alone_and_kd_reads_both(spec, teachers):
    """With `gate_prior` the origin loss is `-log softmax(s(x))_{source}` (the learned scores, no prior), while KD
    and the reported weights take `softmax(s(x) + log π)`: g_k ∝ π_k P(k | x), the prior weighing the origin."""
    from diit_tf.model import ORIGIN_KEY
    model = _model(spec, teachers, DIITConfig(gate_origin=1.0, gate_prior="quality"))
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(6, seed=13)
    x_m[ORIGIN_KEY] = np.array([0, 1, -1, 1, 0, 0], np.int32)
    model._forward(x_t, x_m, training=False)  # builds the gate
    model.set_gate_prior([0.9, 0.1])
    forward = model._forward(x_t, x_m, training=False)
    losses = model.student_losses(tf.constant(y_t), forward)
    query = model.student({k: v for k, v in x_m.items() if k != ORIGIN_KEY})["representation"]
    scores = (model.gate.gate_output(model.gate.gate_hidden(query))).numpy().astype(np.float64)
    free = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    picked = [free[0, 0], free[1, 1], free[3, 1], free[4, 0], free[5, 0]]
    np.testing.assert_allclose(losses["origin"].numpy(), -np.mean(np.log(picked)), rtol=1e-5)
    with_prior = np.array([0.9, 0.1]) * np.exp(scores)
    np.testing.assert_allclose(forward["gate"].numpy(), with_prior / with_prior.sum(axis=1, keepdims=True),
                               rtol=1e-5)
    assert not np.allclose(forward["gate"].numpy(), free)  # the prior moved the weights KD reads


def test_gate_origin_needs_the_rows_sources_and_a_gate(spec, teachers):
    model = _model(spec, teachers, DIITConfig(gate_origin=1.0))
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(6, seed=13)
    with pytest.raises(ValueError, match="mix_origin"):
        model.student_losses(tf.constant(y_t), model._forward(x_t, x_m, training=False))
    with pytest.raises(ValueError, match="gate_origin"):
        DIITConfig(gate_origin=1.0, use_gate=False)
    with pytest.raises(ValueError, match="gate_origin"):
        DIITConfig(gate_origin=-1.0)
    DIITConfig(gate_origin=1.0, gate_supervision=0.0)  # the origin loss alone teaches the gate
    assert DIITConfig.paper().gate_origin == 0.0


def test_fit_gate_on_the_origin_loss_learns_which_source_a_row_came_from(spec, teachers):
    """Mix rows of source 0 have a price below 0.5, of source 1 above: the origin fit makes the gate tell them apart
    (from log 2, the loss of uniform weights, to a tenth of it; over 0.9 on the row's own source on both halves)
    and moves nothing but the gate."""
    from diit_tf.model import ORIGIN_KEY
    from diit_tf.simulation.training import labelled_dataset
    model = _model(spec, teachers, DIITConfig(gate_origin=1.0, gate_supervision=0.0, gate_fit_epochs=1,
                                              gate_fit_learning_rate=0.03, gate_input="embeddings"))
    x, y = _rows(2000, seed=5)
    x[ORIGIN_KEY] = (x["price"] > 0.5).astype(np.int32)
    student_before = _snapshot(model.student.trainable_variables)
    fitted = model.fit_gate(labelled_dataset(x, y, 128, seed=0), epochs=30, seed=1, loss="origin")
    assert fitted["steps"] == 30 * 16 and fitted["origin"] < 0.1 * np.log(2)
    g = model.gate_weights(x)
    own = g[np.arange(len(y)), x[ORIGIN_KEY]]
    assert own[x[ORIGIN_KEY] == 0].mean() > 0.9 and own[x[ORIGIN_KEY] == 1].mean() > 0.9
    assert not any(_changed(student_before, model.student.trainable_variables))
    del x[ORIGIN_KEY]
    with pytest.raises(ValueError, match="mix_origin"):
        model.fit_gate(labelled_dataset(x, y, 128, seed=0), epochs=1, loss="origin")
    with pytest.raises(ValueError, match="loss"):
        model.fit_gate(labelled_dataset(x, y, 128, seed=0), epochs=1, loss="other")


def test_gate_fits_say_which_fits_run_and_in_which_order():
    """Origin first (gate_origin > 0), then the labels unless the origin loss alone trains the gate."""
    assert DIITConfig(gate_fit_epochs=3).gate_fits == ("supervised",)
    assert DIITConfig(gate_fit_epochs=3, gate_origin=1.0).gate_fits == ("origin", "supervised")
    assert DIITConfig(gate_fit_epochs=3, gate_origin=1.0, gate_supervision=0.0).gate_fits == ("origin",)
    assert DIITConfig(gate_origin=1.0).gate_fits == ()  # no fit asked for
    assert DIITConfig(gate_fit_epochs=3, use_gate=False).gate_fits == ()


def _origin_batches(x_t, y_t, x_m, batch_size):
    """Unshuffled `((x_t, y_t), x_m)` batches of equal-size target and mix rows (the same order for two models)."""
    return tf.data.Dataset.from_tensor_slices(((x_t, y_t), x_m)).batch(batch_size)


def test_route_by_origin_distils_each_source_row_from_its_own_source_by_hand(spec, teachers):
    """z̄ on a mix row of source k is source k's logit alone; on a row of no source (-1) the gate's mix. The gate
    itself (its loss, its reported weights) is left as it is."""
    from diit_tf.model import ORIGIN_KEY
    model = _model(spec, teachers, DIITConfig(route_by_origin=True))
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(6, seed=13)
    origin = np.array([0, 1, -1, 1, 0, -1], np.int32)
    forward = model._forward(x_t, dict(x_m, **{ORIGIN_KEY: origin}), training=False)
    z = np.concatenate([t(x_m, training=False)["logit"].numpy() for t in teachers], axis=-1)  # (6, 2)
    g = forward["gate"].numpy()
    expected = [z[0, 0], z[1, 1], g[2] @ z[2], z[3, 1], z[4, 0], g[5] @ z[5]]
    np.testing.assert_allclose(forward["z_bar"].numpy().ravel(), expected, rtol=1e-5)
    assert np.all(g > 0.01) and np.all(g < 0.99)  # a real mix on rows 2 and 5: the test tells the two apart
    # without the option the same rows are mixed by the gate on every row
    plain = model._forward(x_t, x_m, training=False)
    np.testing.assert_allclose(plain["z_bar"].numpy().ravel(), (g * z).sum(axis=-1), rtol=1e-5)
    with pytest.raises(ValueError, match="route_by_origin.*mix_origin"):
        model.student_losses(tf.constant(y_t), plain)
    with pytest.raises(ValueError, match="route_by_origin"):
        DIITConfig(route_by_origin=1)
    assert DIITConfig(route_by_origin=True).reads_origin and DIITConfig(gate_origin=1.0).reads_origin
    assert not DIITConfig().reads_origin and not DIITConfig.paper().route_by_origin


def test_logit_kd_routed_by_origin_trains_as_kd_origin(spec, teachers):
    """`DIITConfig.logit_kd(β, τ, route_by_origin=True)` takes the steps of the simulation's `kd_origin` (`WeightedKD`
    with per-row weights: one-hot on the row's source, 1/K on the target's rows): same start, batches, weights."""
    from diit_tf.baselines.kd import ROW_WEIGHTS, WeightedKD
    from diit_tf.model import ORIGIN_KEY

    students = [build_backbone("dnn", spec, name=f"student_{k}", **HIDDEN) for k in range(2)]
    students[1].set_weights(students[0].get_weights())
    start = _snapshot(students[0].weights)
    diit = DIITModel(teachers, students[0], DIITConfig.logit_kd(3.0, tau=1.5, route_by_origin=True))
    diit.compile(optimizer=keras.optimizers.SGD(0.1))
    kd = WeightedKD(teachers, students[1], beta=3.0, temperature=1.5)
    kd.compile(optimizer=keras.optimizers.SGD(0.1))
    x_t, y_t = _rows(96, seed=21)
    x_m, _ = _rows(96, seed=22)
    origin = np.resize(np.array([-1, 0, 1, 1], np.int32), 96)
    row_weights = np.array([[0.5, 0.5], [1, 0], [0, 1], [0, 1]], np.float32)[np.resize(np.arange(4), 96)]
    by_origin, by_weights = dict(x_m, **{ORIGIN_KEY: origin}), dict(x_m, **{ROW_WEIGHTS: row_weights})
    head = {k: v[:32] for k, v in x_t.items()}
    loss = diit.student_losses(tf.constant(y_t[:32]), diit._forward(
        head, {k: v[:32] for k, v in by_origin.items()}, training=False))["loss"]
    expected = kd.compute_kd_loss(head, tf.constant(y_t[:32]), {k: v[:32] for k, v in by_weights.items()})[0]
    np.testing.assert_allclose(loss.numpy(), expected.numpy(), rtol=1e-5)
    diit.fit(_origin_batches(x_t, y_t, by_origin, 32), epochs=1, verbose=0)
    kd.fit(_origin_batches(x_t, y_t, by_weights, 32), epochs=1, verbose=0)
    for a, b in zip(students[0].get_weights(), students[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(start, students[0].get_weights()))  # it did train


def _logit_kl(z_teacher, z_student, tau):
    """τ² · mean KL(p_τ(z_teacher) ‖ p_τ(z_student)) of two Bernoullis, by hand."""
    p, q = 1 / (1 + np.exp(-z_teacher / tau)), 1 / (1 + np.exp(-z_student / tau))
    return tau ** 2 * np.mean(p * (np.log(p) - np.log(q)) + (1 - p) * (np.log(1 - p) - np.log(1 - q)))


def test_target_kd_distils_the_labelled_target_rows_from_the_gate_routed_sources_by_hand(spec, teachers):
    """target_kd λ: a logit spot on the target rows, the teacher Σ_k g'_k(x_t) z_Sk(x_t) with the gate's KD weights
    (sharpened by routing_temperature) on those rows; L_KD = (1-α)·(L_KL(mix) + λ·L_KL(target))."""
    cfg = DIITConfig(target_kd=2.0, routing_temperature=0.5, beta2=1.5, tau=2.0)
    model = _model(spec, teachers, cfg)
    x_t, y_t = _rows(8, seed=12)
    x_m, _ = _rows(16, seed=13)
    forward = model._forward(x_t, x_m, training=False)
    z_t, _, sharp = _sources_and_gate(model, teachers, x_t, 0.5)
    assert np.all(np.abs(sharp - 0.5) > 1e-3)  # a real routing: the sharpened weights differ from the average
    np.testing.assert_allclose(forward["z_bar_target"].numpy()[:, 0], (sharp * z_t).sum(axis=1), rtol=1e-5, atol=1e-6)
    losses = model.student_losses(tf.constant(y_t), forward)
    student_t = model.student(x_t)["logit"].numpy()[:, 0]
    kl_target = _logit_kl((sharp * z_t).sum(axis=1), student_t, 2.0)
    np.testing.assert_allclose(losses["kl_target"].numpy(), kl_target, rtol=1e-4)
    np.testing.assert_allclose(losses["kd"].numpy(), 0.5 * (losses["kl"].numpy() + 2.0 * kl_target), rtol=1e-4)
    np.testing.assert_allclose(losses["loss"].numpy(), losses["ce"].numpy() + 1.5 * losses["kd"].numpy()
                               + losses["gate_bce"].numpy(), rtol=1e-5)
    # off (the default and the paper): no such term, and the mix's logit spot alone in L_KD
    plain = _model(spec, teachers, cfg.replace(target_kd=0.0))
    plain.set_weights(model.get_weights())
    plain_losses = plain.student_losses(tf.constant(y_t), plain._forward(x_t, x_m, training=False))
    assert "kl_target" not in plain_losses
    np.testing.assert_allclose(plain_losses["kd"].numpy(), 0.5 * losses["kl"].numpy(), rtol=1e-5)
    assert DIITConfig().target_kd == 0.0 and DIITConfig.paper().target_kd == 0.0
    with pytest.raises(ValueError, match="target_kd"):
        DIITConfig(target_kd=-1.0)


@pytest.mark.slow
def test_target_kd_runs_the_sources_on_the_target_rows_without_gate_supervision(spec, teachers):
    """With no supervised gate loss the sources' outputs on the target rows are computed for this spot alone; with
    no gate (`use_gate=False`) the teacher is their uniform average. It trains and reports `kl_target`."""
    model = _model(spec, teachers, DIITConfig.logit_kd(1.0, target_kd=1.0))
    x_t, y_t = _rows(8, seed=14)
    x_m, _ = _rows(16, seed=15)
    forward = model._forward(x_t, x_m, training=False)
    z_t = np.stack([t(x_t)["logit"].numpy()[:, 0] for t in teachers], axis=1)
    np.testing.assert_allclose(forward["z_bar_target"].numpy()[:, 0], z_t.mean(axis=1), rtol=1e-5, atol=1e-6)
    assert "gate_bce" not in model.student_losses(tf.constant(y_t), forward)
    history = model.fit(_dataset(), epochs=1, verbose=0).history
    assert np.isfinite(history["kl_target"]).all() and history["kl_target"][0] > 0
    assert "kl_target" not in _model(spec, teachers, DIITConfig()).fit(_dataset(), epochs=1, verbose=0).history
