"""An empty landing directory (the dataset's metadata, no span yet) that an end-to-end test fills one span at a
time, as a daily job would."""
import shutil


def empty_landing(root, dataset):
    """`root/landing` holding `dataset`'s metadata.json and no span."""
    landing = root / "landing"
    landing.mkdir()
    shutil.copy2(dataset / "metadata.json", landing / "metadata.json")
    return landing
