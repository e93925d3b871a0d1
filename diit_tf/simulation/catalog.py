"""Names and one-line descriptions of the simulation's methods (no TensorFlow import: used by `--help`)."""

DESCRIPTIONS = {
    "base": "single-domain incremental target model (the reference)",
    "diit": "DIIT as validated: logit KD from the latest sources through a gate trained on the target's labels",
    "diit_paper": "DIIT in the paper's form: gate trained through KD + adversarial mapper + middle and logit spots",
    "dann": "DANN: target model with a GRL domain classifier on target + mix rows",
    "ctnet": "CTNet: frozen source representations as extra target inputs (sources served)",
    "finetune": "fine-tune each period from a model trained on all domains",
    "joint": "one shared-bottom model with a domain embedding, trained on all domains",
    "kd_uniform": "plain logit KD from the uniform source ensemble",
    "kd_static": "logit KD from the sources with fixed weights from their quality on the period's target rows",
    "kd_best_single": "logit KD from the one source of best quality on the period's target rows",
    "kd_self": "logit KD from the previous-period target model alone (control: regularisation, no transfer)",
    "diit_no_gate": "the paper's DIIT with a uniform average instead of the gate",
    "diit_no_adv": "the paper's DIIT without the adversarial part",
    "diit_no_middle": "the paper's DIIT without the middle spot (MSE)",
    "diit_no_logit": "the paper's DIIT without the logit spot (KL)",
    "diit_single_source": "DIIT with the best single source (chosen on the insertion period)",
}
ALL_METHODS = list(DESCRIPTIONS)
# Multi-domain models trained on every domain's rows from the first period, at 2-4x the cost of `joint` (kd_joint:
# joint's cost plus a student's): run only when named in --methods, so `--methods all` stays within its time budget.
MULTI_DOMAIN = {
    "kd_joint": "logit KD from a jointly trained multi-domain teacher into the single-domain target model "
                "(serves the target model only)",
    "hamur": "HAMUR: per-domain towers with hypernetwork-generated adapters, trained on all domains",
    "star": "STAR: partitioned normalization + star-topology FCN + auxiliary net, trained on all domains",
}
# Tried to make the gate earn its keep; run only when named in --methods (see diit_tf/simulation/variants.py).
EXPERIMENTAL = {
    "diit_source_gate": "DIIT whose gate also reads the sources' representations and logits (experimental)",
    "kd_origin": "logit KD from the sources, each mix row from the source it came from (routing by origin, "
                 "known without a gate)",
}
# Every method --methods accepts, with its description.
NAMED = {**DESCRIPTIONS, **MULTI_DOMAIN, **EXPERIMENTAL}


def describe(name: str) -> str:
    """The one-line description of a method, or of a `base:key=value+...` DIIT variant."""
    known = NAMED
    if name in known:
        return known[name]
    base, _, options = name.partition(":")
    return f"{known.get(base, base)}, with {options.replace('+', ', ')}"
