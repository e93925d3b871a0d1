"""The baselines: each reduces to plain CTR training when its transfer term is switched off, keeps its frozen parts
frozen, and starts from exactly the model it was given."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from diit_tf.backbones import build_backbone
from diit_tf.baselines import (CTNet, DANN, UniformKD, as_domain_model, build_joint_model, copy_weights,
                               joint_features, joint_spec)
from diit_tf.data import PeriodData
from diit_tf.simulation.training import CTRTrainer

N = 48


def _features(spec, n=N, seed=0):
    rng = np.random.default_rng(seed)
    feats = {name: rng.integers(0, b, n).astype(np.int64) for name, b in spec.categorical.items()}
    feats.update({name: rng.random(n).astype(np.float32) for name in spec.numeric})
    return feats


def _period(spec, n=N, seed=0):
    rng = np.random.default_rng(seed + 1)
    domains = np.array(spec.domains)[rng.integers(0, len(spec.domains), n)]
    return PeriodData(_features(spec, n, seed), (rng.random(n) < 0.4).astype(np.float32), domains, 1, spec)


def _backbone(spec, name, seed=0):
    keras.utils.set_random_seed(seed)
    return build_backbone("dnn", spec, hidden_units=(8, 4), embedding_dim=4, name=name)


def _clone(model, name):
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _transfer_batch(spec, with_labels=False):
    period = _period(spec)
    target = period.domain(spec.target)
    x_t, y_t = target.features, target.labels
    x_m = period.features
    mix = (x_m, period.labels, period.domain_ids) if with_labels else x_m
    return tf.data.Dataset.from_tensors(((x_t, y_t), mix))


def _plain_step(spec, student, lr=0.01):
    target = _period(spec).domain(spec.target)
    trainer = CTRTrainer(student)
    trainer.compile(optimizer=keras.optimizers.SGD(lr))
    trainer.fit(tf.data.Dataset.from_tensors((target.features, target.labels)), epochs=1, verbose=0)
    return student.get_weights()


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def _assert_changed(before, after):
    assert any(not np.allclose(x, y) for x, y in zip(before, after))


# ---------------------------------------------------------------------------------------------------- UniformKD
@pytest.mark.slow
def test_kd_with_zero_beta_is_plain_ctr_training(tiny_spec):
    student = _backbone(tiny_spec, "s")
    reference = _clone(student, "ref")
    teachers = [_backbone(tiny_spec, f"t{k}", seed=k + 1) for k in range(2)]
    model = UniformKD(teachers, student, beta=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    model.fit(_transfer_batch(tiny_spec), epochs=1, verbose=0)
    _assert_same(student.get_weights(), _plain_step(tiny_spec, reference))


@pytest.mark.slow
def test_kd_ensemble_is_the_uniform_mean_and_teachers_stay_frozen(tiny_spec):
    teachers = [_backbone(tiny_spec, f"t{k}", seed=k + 1) for k in range(2)]
    before = [t.get_weights() for t in teachers]
    model = UniformKD(teachers, _backbone(tiny_spec, "s"), beta=1.0)
    x = _features(tiny_spec)
    expected = (teachers[0](x)["logit"] + teachers[1](x)["logit"]) / 2
    np.testing.assert_allclose(model.ensemble_logit(x), expected, rtol=1e-6)
    student_before = model.student.get_weights()
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(_transfer_batch(tiny_spec), epochs=2, verbose=0)
    for t, w in zip(teachers, before):
        for a, b in zip(t.get_weights(), w):
            assert np.array_equal(a, b)
    _assert_changed(student_before, model.student.get_weights())


def test_kd_rejects_bad_arguments(tiny_spec):
    with pytest.raises(ValueError, match="teachers"):
        UniformKD([], _backbone(tiny_spec, "s"))
    with pytest.raises(ValueError, match="temperature"):
        UniformKD([_backbone(tiny_spec, "t")], _backbone(tiny_spec, "s"), temperature=0.0)


# --------------------------------------------------------------------------------------------------------- DANN
def test_dann_without_transfer_terms_is_plain_ctr_training(tiny_spec):
    student = _backbone(tiny_spec, "s")
    reference = _clone(student, "ref")
    model = DANN(student, num_domains=3, domain_weight=0.0, source_weight=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    model.fit(_transfer_batch(tiny_spec, with_labels=True), epochs=1, verbose=0)
    _assert_same(student.get_weights(), _plain_step(tiny_spec, reference))


def test_dann_domain_loss_reaches_the_student_reversed(tiny_spec):
    """With the domain loss only, the classifier descends it while the student's last layer ascends it."""
    student = _backbone(tiny_spec, "s")
    model = DANN(student, num_domains=3, grl_lambda=1.0, domain_weight=1.0, source_weight=0.0)
    (x_t, y_t), (x_m, y_m, d_m) = next(iter(_transfer_batch(tiny_spec, with_labels=True)))
    with tf.GradientTape(persistent=True) as tape:
        rep = student(x_m)["representation"]
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(d_m, model.classifier(model.grl(rep))))
        plain = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(d_m, model.classifier(rep)))
    np.testing.assert_allclose(tape.gradient(loss, rep), -tape.gradient(plain, rep), rtol=1e-5, atol=1e-8)


def test_dann_rejects_bad_arguments(tiny_spec):
    with pytest.raises(ValueError, match="num_domains"):
        DANN(_backbone(tiny_spec, "s"), num_domains=1)
    with pytest.raises(ValueError, match="source_weight"):
        DANN(_backbone(tiny_spec, "s"), num_domains=3, source_weight=-1.0)


# -------------------------------------------------------------------------------------------------------- CTNet
@pytest.mark.slow
def test_ctnet_starts_as_the_target_model_and_keeps_sources_frozen(tiny_spec):
    target = _backbone(tiny_spec, "t")
    sources = [_backbone(tiny_spec, f"s{k}", seed=k + 1) for k in range(2)]
    x = _features(tiny_spec)
    model = CTNet(target, sources)
    np.testing.assert_allclose(model(x)["logit"], target(x)["logit"], rtol=1e-6)
    before = [s.get_weights() for s in sources]
    trainer = CTRTrainer(model)
    trainer.compile(optimizer=keras.optimizers.Adam(0.01))
    period = _period(tiny_spec)
    trainer.fit(tf.data.Dataset.from_tensors((period.features, period.labels)), epochs=3, verbose=0)
    for s, w in zip(sources, before):
        for a, b in zip(s.get_weights(), w):
            assert np.array_equal(a, b)
    assert not np.allclose(model.transfer.get_weights()[0], 0.0), "the transfer head should have learned"


def test_ctnet_refresh_copies_the_latest_sources(tiny_spec):
    towers = [_backbone(tiny_spec, f"s{k}", seed=k + 1) for k in range(2)]
    latest = [_backbone(tiny_spec, f"n{k}", seed=k + 10) for k in range(2)]
    model = CTNet(_backbone(tiny_spec, "t"), towers)
    model.refresh_sources(latest)
    for tower, new in zip(towers, latest):
        _assert_same(tower.get_weights(), new.get_weights())
    with pytest.raises(ValueError, match="expected 2 source models"):
        model.refresh_sources(latest[:1])


# -------------------------------------------------------------------------------------------------------- joint
def test_joint_spec_and_features_carry_the_domain(tiny_spec):
    spec = joint_spec(tiny_spec)
    assert spec.categorical["domain_id"] == 3
    period = _period(tiny_spec)
    feats = joint_features(period)
    np.testing.assert_array_equal(feats["domain_id"], period.domain_ids)
    assert set(joint_features(period, domain="target")["domain_id"]) == {0}
    with pytest.raises(ValueError, match="already exists"):
        joint_spec(tiny_spec, domain_feature="user_id")


def test_joint_model_output_depends_on_the_domain(tiny_spec):
    model = build_joint_model("dnn", tiny_spec, hidden_units=(8, 4), embedding_dim=4)
    period = _period(tiny_spec)
    a = model(joint_features(period, domain="target"))["logit"]
    b = model(joint_features(period, domain="source_a"))["logit"]
    assert a.shape == (N, 1)
    assert not np.allclose(a, b), "the domain embedding should change the prediction"


def test_the_joint_model_as_a_domain_model_tags_every_row_and_shares_weights(tiny_spec):
    model = build_joint_model("dnn", tiny_spec, hidden_units=(8, 4), embedding_dim=4)
    period = _period(tiny_spec)
    view = as_domain_model(model, tiny_spec)
    assert sorted(view.input) == sorted(tiny_spec.feature_names)  # the single-domain inputs: no domain_id
    for domain, wrapped in (("target", view), ("source_a", as_domain_model(model, tiny_spec, domain="source_a"))):
        want = model(joint_features(period, domain=domain))
        got = wrapped(period.features)  # the features alone, as a single-domain model gets them
        np.testing.assert_allclose(got["logit"], want["logit"], rtol=1e-6)
        np.testing.assert_allclose(got["representation"], want["representation"], rtol=1e-6)
    model.get_layer("domain_heads").kernel.assign(np.ones((4, 3), np.float32))  # shared weights, not a copy
    np.testing.assert_allclose(view(period.features)["logit"],
                               model(joint_features(period, domain="target"))["logit"], rtol=1e-6)


def test_copy_weights_checks_architectures(tiny_spec):
    a, b = _backbone(tiny_spec, "a"), _backbone(tiny_spec, "b", seed=3)
    copy_weights(a, b)
    _assert_same(a.get_weights(), b.get_weights())
    other = build_backbone("dnn", tiny_spec, hidden_units=(6,), embedding_dim=4, name="c")
    with pytest.raises(ValueError, match="different architectures"):
        copy_weights(a, other)


def _dense_model(width, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(width)(inputs))


def test_copy_weights_copies_the_sources_current_values_every_period():
    source, copy, other = _dense_model(2, 0), _dense_model(2, 1), _dense_model(2, 2)
    copy_weights(source, copy)
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), source.get_weights()))
    source.set_weights([w + 1.0 for w in source.get_weights()])  # the source trains on
    copy_weights(source, copy)
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), source.get_weights()))
    copy_weights(other, copy)  # a different source
    assert all(np.array_equal(a, b) for a, b in zip(copy.get_weights(), other.get_weights()))
    with pytest.raises(ValueError, match="different architectures"):
        copy_weights(_dense_model(4, 3), copy)


def test_the_joint_models_view_of_a_domain_saves_and_loads(tiny_spec, tmp_path):
    model = build_joint_model("dnn", tiny_spec, hidden_units=(8, 4), embedding_dim=4)
    view = as_domain_model(model, tiny_spec, domain="source_a")
    view.save(tmp_path / "view.keras")
    loaded = keras.models.load_model(tmp_path / "view.keras", compile=False)
    period = _period(tiny_spec)
    np.testing.assert_allclose(loaded(period.features)["logit"],
                               model(joint_features(period, domain="source_a"))["logit"], rtol=1e-6)


def test_tables_by_path_finds_a_joint_models_tables_for_a_single_domain_model(tiny_spec):
    """`training.student_init = "joint_embeddings"`'s matching: each of the student's tables gets the joint model's
    table at its path (the joint model's domain-id table has none in the student); nothing is assigned."""
    from diit_tf.baselines.finetune import tables_by_path
    from diit_tf.layers.feature_embedding import embedding_positions

    joint = as_domain_model(build_joint_model("dnn", tiny_spec, hidden_units=(8, 4), embedding_dim=4), tiny_spec)
    for k, i in enumerate(embedding_positions(joint)):  # tables that differ from any initialisation, row by row
        joint.weights[i].assign(np.full(joint.weights[i].shape, k + 1.0, np.float32))
    student = _backbone(tiny_spec, "student")
    before = student.get_weights()
    found = tables_by_path(joint, student, "the joint model")
    assert sorted(found) == embedding_positions(student)
    by_path = {joint.weights[i].path: k + 1.0 for k, i in enumerate(embedding_positions(joint))}
    assert len(by_path) == len(tiny_spec.categorical) + 1 and "features/embedding_domain_id/embeddings" in by_path
    for i, table in found.items():
        np.testing.assert_array_equal(table, np.full(student.weights[i].shape, by_path[student.weights[i].path]))
    _assert_same(student.get_weights(), before)
    wider = build_backbone("dnn", tiny_spec, hidden_units=(8, 4), embedding_dim=5, name="wider")
    first = wider.weights[embedding_positions(wider)[0]].path
    with pytest.raises(ValueError, match=rf"^the joint model has no table {first} of shape \(\d+, 5\) \(its tables: "):
        tables_by_path(joint, wider, "the joint model")
