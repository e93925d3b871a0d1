"""Session fixtures of the multi-worker tests (slow: they train in subprocesses): the transformed span, the DIIT
trainer's inputs (its teachers trained), and the model one worker trains from them (the reference of the
multi-worker runs)."""
import os

import pytest

from diit_tf.config import PAPER_FORM

from multi_worker_setup import MODEL, REPO, SPEC, run_jobs, span_data
from transformed_fixtures import write_transform_output, write_transformed


@pytest.fixture(scope="session")
def mw_span(tmp_path_factory):
    """The span (examples with a train and an eval split, the Transform output) and the source trainer's job."""
    root = tmp_path_factory.mktemp("multi_worker")
    examples = root / "examples"
    train = write_transformed(examples / "Split-train", span_data(), shards=2)
    write_transformed(examples / "Split-eval", span_data((32, 32, 32), seed=1), shards=1)
    transform = write_transform_output(root / "transform")
    source = {"repo": REPO, "transform": transform, "task": "source",
              "train_files": [os.path.join(examples, "Split-train", "*")],
              "eval_files": [os.path.join(examples, "Split-eval", "*")],
              "config": {**MODEL, "feature_spec": SPEC, "domain": "src_a"}}
    return {"root": root, "examples": str(examples), "transform": transform, "train": train, "source": source}


@pytest.fixture(scope="session")
def mw_student_job(mw_span):
    """The DIIT trainer's job on the span, with two teachers (single-worker source models of src_a and src_b)."""
    root, source = mw_span["root"], mw_span["source"]
    teachers = []
    for d in ("src_a", "src_b"):
        out = str(root / "teachers" / d)
        run_jobs([{**source, "config": {**source["config"], "domain": d}, "out": out, "run": out + "-run"}])
        teachers.append(out)
    return {"repo": REPO, "transform": mw_span["transform"], "task": "student", "examples": mw_span["examples"],
            "teachers": teachers,
            # the paper's form, so that both phases (discriminator, then student) run under the strategy
            "config": {**MODEL, "feature_spec": SPEC, "mix_batch_size": 32, "diit": dict(PAPER_FORM)}}


@pytest.fixture(scope="session")
def mw_student(mw_span, mw_student_job):
    """`mw_student_job` and the student one worker trains from it (`<single>/model`, `<single>/run`)."""
    single = str(mw_span["root"] / "single" / "student")
    run_jobs([{**mw_student_job, "out": os.path.join(single, "model"), "run": os.path.join(single, "run")}])
    return {"job": mw_student_job, "single": single}
