"""DIIT's hyperparameters and the open choices of docs/method.md, as one named, validated configuration.

Defaults and why (see docs/results.md for the measurements behind them):
- `alpha=0.5` weighs middle spot (MSE) against logit spot (KL) in `L_KD = α·L_MSE + (1-α)·L_KL`.
- `beta1=0.01` weighs the adversarial loss, `beta2=0.5` the distillation loss (the prototype's setting).
- `tau=2.0` softens both Bernoullis in the logit spot; the KL is scaled by τ².
- `grl_lambda=1.0`: strength of the gradient reversal between the mapper and the discriminator.
- `gate_supervision=1.0`: weight of the gate's supervised loss on labelled target rows, which teaches the gate
  which sources predict the target (0 = the gate learns only through the KD losses, as in the paper).
- `symmetric_adversarial=False`: reverse only the mapper side; True also pushes the student's `e_T` to fool D.
- `use_gate / use_adversarial / use_middle / use_logit`: the paper's ablations (uniform average instead of the
  gate, no adversarial part, no middle spot, no logit spot). The default switches the adversarial part and the
  middle spot off, and trains the gate by its supervised loss alone (`gate_from_kd=False`, `gate_supervision=1`):
  on every benchmark in docs/results.md the middle spot and the adversary never moved the target AUC beyond the
  seed spread (removing both: +0.0002 to +0.0007, at ~20% less training time), and the gate trained through the
  KD losses ranked the sources against their quality on MovieLens-1M's age groups (validation: the supervised
  gate +0.003 to +0.005 AUC, rank correlation +0.8 instead of +0.1). `DIITConfig.paper()` is the paper's form
  (every part on, the gate trained through KD only); `diit simulate --methods diit_paper` runs it.

Variants beyond the paper's form (each defaults to the paper's form, except `gate_from_kd`):
- `gate_loss="mixture"`: the form of the gate's supervised loss on labelled target rows (weight
  `gate_supervision`). "mixture": `BCE(y, σ(Σ_k g_k z_Sk))`, the gate learns the mixture of source logits that
  best predicts the target; "confidence": per-example soft targets from each source's own loss on the row,
  `q_k = softmax_k(-BCE(y, σ(z_Sk)) / gate_temperature)`, and `CE(q, g)` (confidence-aware multi-teacher KD).
- `gate_temperature=1.0`: the temperature of the "confidence" targets.
- `gate_origin=0.0`: weight of the gate's origin loss on the mix rows, `CE(onehot(source the row came from), g)`
  (`diit_tf.losses.origin_ce`; the mix rows carry their source, `diit_tf.model.ORIGIN_KEY`). It teaches the gate
  which source's traffic a row looks like, from every mix row instead of the few labelled target rows; its optimum
  `g_k(x) = P(source k | x)` is the distribution-weighted combining rule of multi-source adaptation (Mansour et
  al., 2008): on a row like those source k was trained on, trust source k. 0: no such loss (the paper).
- `gate_from_kd=False`: whether the KD losses (MSE, KL) train the gate. The paper's gate (True) learns only
  through them, which rewards the sources that already agree with the student; False (the default) trains the
  gate by its supervised loss alone (KD then sees the gate's weights as constants).
- `gate_input="representation"`: what the gate reads (stop-gradiented): the student's representation `e_T(x)`
  (the paper) or its input "embeddings" (the concatenated feature embeddings, which keep which item, category,
  user group a row is about).
- `gate_prior="none"`: a domain-level prior added to the gate's scores, `g(x) = softmax(s(x) + log π)`.
  "quality": `π = softmax_k(G_k / gate_prior_temperature)`, set once per period from each source's gain over chance
  on the target's labelled rows of the period, `G_k = AUC_k - 0.5` (the weights of `kd_static`); the learned gate
  then moves each row's weights away from `π`. "none": no prior (the paper). With `gate_origin` > 0 the origin loss
  reads the learned scores without the prior (`softmax(s(x))`), so they learn which source a row comes from and the
  weights KD reads are `g_k(x) ∝ π_k P(k | x)`: the distribution-weighted rule with the sources' quality as the
  mixture weights (were the loss read through the prior, the scores would learn to cancel it).
- `gate_prior_temperature=0.01`: the temperature of the "quality" prior (small: most weight on the best sources).
- `gate_fit_epochs=0`: passes of the gate alone over the period's labelled target rows before the period's DIIT
  training, on its supervised loss (`gate_loss`), with its own Adam at `gate_fit_learning_rate=0.01`. Within
  DIIT's training the gate takes one step per target batch with the student's optimizer, a few dozen steps per period
  on a small target; the sources are frozen and the gate reads the student stop-gradiented, so its problem can be
  fitted on its own first. 0: no such fit (the paper). Without a gate (`use_gate=False`) there is nothing to fit.
- `gate_calibration=False`: in the "mixture" gate loss, a learned affine map of the mixed logit,
  `BCE(y, σ(a · Σ_k g_k z_Sk + b))` (a, b start at 1, 0; used by that loss only, never by KD). Without it the
  gate can only shrink an over-confident source's logits by mixing in another source, which keeps its weights
  soft; with it the scale is the calibration's job and the weights can say which source is right.
- `routing_temperature=1.0`: the temperature of the gate's weights where they mix the sources for KD (both spots),
  `g'_k(x) = g_k(x)^(1/T) / Σ_j g_j(x)^(1/T)`. Below 1 it sharpens each row's routing towards the sources the gate
  ranks first (the gate's supervised loss, which fits a mixture of logits, keeps its weights soft); 1 is the
  paper (the weights as they are). The gate's loss and reported weights are the unsharpened ones.
- `route_by_origin=False`: where KD mixes the sources (both spots), a mix row drawn from source k takes source k
  alone (weight 1 on k), whatever the gate says; the target's own rows of the mix (no source) keep the gate's
  weights (the uniform average without a gate). The gate is then trained and reported as before, and decides only
  for rows of no known source. With `DIITConfig.logit_kd(beta, route_by_origin=True)` DIIT trains as the
  simulation's `kd_origin`. False: the gate's weights on every row (the paper).
- `target_kd=0.0`: a logit spot on the labelled target rows too, `L_KL(x_t)`: the student's logit on each target
  row of the batch is distilled from the sources mixed by the gate's weights on that row (sharpened by
  `routing_temperature`, constants unless `gate_from_kd`), and `L_KD = α·L_MSE + (1-α)·(L_KL + target_kd·L_KL(x_t))`.
  The mix's logit spot sees the target's rows only at their share of the mix; routing a row of no known source is
  the one thing the gate can do that routing by origin (`route_by_origin`, `kd_origin`) cannot, and this spot
  gives those rows the weight of a whole batch. 0: no such spot (the paper).
- `middle_spot="mapper"`: the direction of the middle-spot regression. "mapper" (the paper):
  `MSE(e_T, Mapper(ē_S))`, which the mapper alone can drive to zero; "student" (FitNets): a regressor from the
  student's side onto each source's own representation, `Σ_k g_k · MSE(R_k(e_T), sg(e_Sk))`, so only a student
  representation that carries what the sources know lowers it (the sources' spaces are never summed).
- `adversary="mapper"`: what the discriminator separates. "mapper" (the paper): target-model representations
  `e_T` from mapped source representations; "domain": the student's representations of target rows from those of
  the mix rows (gradient reversal into the student, as in DANN), so the student's representation becomes domain
  invariant.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

from diit_tf.counts import is_count, is_number


# The paper's form: every part on, the gate reading the student's representation and trained only through the KD
# losses, no supervised gate loss.
PAPER_FORM = {"gate_from_kd": True, "gate_supervision": 0.0, "gate_origin": 0.0, "gate_input": "representation",
              "gate_prior": "none", "gate_fit_epochs": 0, "gate_calibration": False, "routing_temperature": 1.0,
              "route_by_origin": False, "target_kd": 0.0, "use_middle": True, "use_adversarial": True}

CHOICES = {
    "gate_loss": ("mixture", "confidence"),
    "gate_input": ("representation", "embeddings"),
    "gate_prior": ("none", "quality"),
    "middle_spot": ("mapper", "student"),
    "adversary": ("mapper", "domain"),
}


@dataclasses.dataclass(frozen=True)
class DIITConfig:
    alpha: float = 0.5
    beta1: float = 0.01
    beta2: float = 0.5
    tau: float = 2.0
    grl_lambda: float = 1.0
    gate_supervision: float = 1.0
    symmetric_adversarial: bool = False
    use_gate: bool = True
    use_adversarial: bool = False
    use_middle: bool = False
    use_logit: bool = True
    gate_loss: str = "mixture"
    gate_temperature: float = 1.0
    gate_origin: float = 0.0
    gate_from_kd: bool = False
    gate_input: str = "representation"
    gate_prior: str = "none"
    gate_prior_temperature: float = 0.01
    gate_fit_epochs: int = 0
    gate_fit_learning_rate: float = 0.01
    gate_calibration: bool = False
    routing_temperature: float = 1.0
    route_by_origin: bool = False
    target_kd: float = 0.0
    middle_spot: str = "mapper"
    adversary: str = "mapper"
    gate_hidden: int = 64
    mapper_hidden: tuple = (64,)
    discriminator_hidden: tuple = (64,)

    def __post_init__(self):
        # Each field's type first (a string compared with 0 would be a TypeError, and True would pass as 1): the
        # float fields take a number (`is_number`: an int or a float, not a boolean), the bool fields a bool only
        # (3 is no switch; the command line's true/false are read as booleans, `diit_tf.keyvalue.parse_value`).
        for name in NUMBER_FIELDS:
            if not is_number(getattr(self, name)):
                raise ValueError(f"`{name}` should be a number. Received: {getattr(self, name)!r}")
        for name in BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"`{name}` should be a bool. Received: {getattr(self, name)!r}")
        for name in ("mapper_hidden", "discriminator_hidden"):
            value = getattr(self, name)
            value = tuple(value) if isinstance(value, Iterable) and not isinstance(value, str) else (value,)
            if not value or not all(is_count(u) for u in value):
                raise ValueError(f"`{name}` should be a positive integer or a non-empty sequence of them. "
                                 f"Received: {getattr(self, name)!r}")
            object.__setattr__(self, name, value)
        if not self.tau > 0:
            raise ValueError(f"`tau` (temperature) should be > 0. Received: {self.tau!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"`alpha` should be in [0, 1]. Received: {self.alpha!r}")
        for name in ("beta1", "beta2", "grl_lambda", "gate_supervision", "gate_origin", "target_kd"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"`{name}` should be >= 0. Received: {value!r}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` should be one of {list(allowed)}. Received: {getattr(self, name)!r}")
        if not is_count(self.gate_fit_epochs, minimum=0):
            raise ValueError(f"`gate_fit_epochs` should be an integer >= 0. Received: {self.gate_fit_epochs!r}")
        for name in ("gate_temperature", "gate_prior_temperature", "gate_fit_learning_rate", "routing_temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` should be > 0. Received: {getattr(self, name)!r}")
        if self.use_gate and not self.gate_from_kd and self.gate_supervision == 0 and self.gate_origin == 0:
            raise ValueError("The gate would never learn: `gate_from_kd=False` trains it by its supervised loss "
                             "alone, and `gate_supervision` and `gate_origin` are 0. Set `gate_supervision` > 0, "
                             "`gate_origin` > 0, `gate_from_kd=True` (the paper's form) or `use_gate=False`.")
        if self.gate_origin > 0 and not self.use_gate:
            raise ValueError("`gate_origin` > 0 trains the gate, and `use_gate=False` has none. Set one of them.")
        if not is_count(self.gate_hidden):
            raise ValueError(f"`gate_hidden` should be a positive integer. Received: {self.gate_hidden!r}")

    @property
    def reads_origin(self) -> bool:
        """Whether DIIT's steps read each mix row's source (`diit_tf.model.ORIGIN_KEY`): for the gate's origin loss
        (`gate_origin` > 0) or for routing by it (`route_by_origin`). The mix batches must then carry it."""
        return self.gate_origin > 0 or self.route_by_origin

    @property
    def gate_fits(self) -> tuple:
        """The gate's own fits before each period's training (`gate_fit_epochs` > 0), in order: "origin" (on the
        mix rows' sources, with `gate_origin` > 0), then "supervised" (on the target's labels, unless the origin
        loss alone trains the gate, `gate_supervision` 0). Empty without a fit or a gate. The simulation and the
        pipeline's DIIT trainer both run these (where the gate learns: more than one source)."""
        if not (self.gate_fit_epochs and self.use_gate):
            return ()
        origin = self.gate_origin > 0
        return (("origin",) if origin else ()) + (("supervised",) if self.gate_supervision > 0 or not origin else ())

    @classmethod
    def paper(cls, **changes) -> "DIITConfig":
        """The paper's form (`PAPER_FORM` over the defaults), then `changes`."""
        return cls(**{**PAPER_FORM, **changes})

    @classmethod
    def logit_kd(cls, beta: float, tau: float = 2.0, **changes) -> "DIITConfig":
        """Plain logit KD from the sources' uniform average: no gate, no middle spot, no adversary, and `alpha` 0 so
        the loss is `CE + beta·KL` at temperature `tau`, as `diit_tf.baselines.kd.WeightedKD` computes it. With one
        teacher (the pipeline's joint teacher) it trains as the simulation's `kd_joint` student."""
        return cls(**{"use_gate": False, "use_middle": False, "use_adversarial": False, "alpha": 0.0,
                      "gate_supervision": 0.0, "beta2": float(beta), "tau": float(tau), **changes})

    def replace(self, **changes) -> "DIITConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["mapper_hidden"] = list(self.mapper_hidden)
        d["discriminator_hidden"] = list(self.discriminator_hidden)
        return d

    @classmethod
    def from_dict(cls, d) -> "DIITConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Unknown DIIT option(s) {unknown}; known options: {sorted(known)}")
        return cls(**d)

    @classmethod
    def from_json(cls, path) -> "DIITConfig":
        with open(path) as f:
            return cls.from_dict(json.load(f))


# The fields by declared type (annotations are text here, `from __future__ import annotations`), which
# `DIITConfig.__post_init__` checks first: every float field takes a number, every bool field a bool.
NUMBER_FIELDS = tuple(f.name for f in dataclasses.fields(DIITConfig) if f.type == "float")
BOOL_FIELDS = tuple(f.name for f in dataclasses.fields(DIITConfig) if f.type == "bool")
