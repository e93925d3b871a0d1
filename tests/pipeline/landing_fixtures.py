"""An empty landing directory (the dataset's metadata, no span yet) that an end-to-end test fills one span at a
time, as a daily job would."""
import shutil
import time


def empty_landing(root, dataset):
    """`root/landing` holding `dataset`'s metadata.json and no span."""
    landing = root / "landing"
    landing.mkdir()
    shutil.copy2(dataset / "metadata.json", landing / "metadata.json")
    return landing


def run_spans(config, dataset, landing, spans, models) -> dict:
    """Land each span of `spans` from `dataset` and run the pipeline once (LocalDagRunner) after each. Returns
    `{span: results.run_summary of that run}` and, for each `name: node id` of `models`, `"<name>_<span>"`: the uri
    of the model that node wrote in that run."""
    from pipeline import diit, results

    metadata = config.path("metadata_path")
    out = {}
    for span in spans:
        shutil.copytree(dataset / f"span-{span}", landing / f"span-{span}")
        since = int(time.time() * 1000)
        diit.run(config)
        out[span] = results.run_summary(metadata, since_ms=since)
        for name, node in models.items():
            out[f"{name}_{span}"] = results.artifacts(metadata, "Model", node, since)[-1].uri
    return out
