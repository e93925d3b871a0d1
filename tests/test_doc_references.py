"""Every `.md` path named in the code and the docs is a file of this repository.

A reference is any token ending in `.md`: `docs/method.md` in a docstring, `[results](results.md)` in a doc,
`README.md` in pyproject.toml (this file's own examples aside). It must resolve, relative to the repository root or to the directory of the file
that names it, to an existing file inside the repository. The only exceptions are the names of files the programs
write (`RUN_OUTPUTS`).
"""
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".toml", ".json", ".yml", ".yaml", ".txt", ".sh", ".cfg"}
NAMES = {"Makefile"}
SKIP_DIRS = {".venv", ".git", "runs", "build", "dist", "data", "__pycache__"}
# Files the programs write (a simulation's report, a tuning stage's summary), named in their docs.
RUN_OUTPUTS = {"report.md", "tuning.md", "OUT/report.md", "OUT/tuning.md"}
REFERENCE = re.compile(r"(?<![\w/.-])((?:\.{1,2}/)*(?:[\w-]+/)*[\w-]+\.md)\b")


def source_files(root: Path):
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(folder) / name
            if (path.suffix in SUFFIXES or name in NAMES) and path.resolve() != Path(__file__).resolve():
                yield path


def references(path: Path) -> list:
    """(line number, reference) for every `.md` token in the file."""
    found = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        found += [(number, m.group(1)) for m in REFERENCE.finditer(line)]
    return found


def broken(root: Path) -> list:
    problems = []
    for path in source_files(root):
        for number, ref in references(path):
            candidates = [(path.parent / ref).resolve(), (root / ref).resolve()]
            inside = [c for c in candidates if c == root or root in c.parents]
            if any(c.is_file() for c in inside):
                continue
            if not inside:
                problems.append(f"{path.relative_to(root)}:{number}: {ref} points outside the repository")
            elif ref not in RUN_OUTPUTS:
                problems.append(f"{path.relative_to(root)}:{number}: {ref} does not exist")
    return problems


def test_every_md_reference_resolves():
    assert broken(ROOT) == []


def test_the_method_and_toolchain_docs_exist_and_are_referenced():
    for name in ("method.md", "toolchain.md", "architecture.md"):
        assert (ROOT / "docs" / name).is_file()
    referenced = {ref for path in source_files(ROOT) for _, ref in references(path)}
    assert {"docs/method.md", "docs/toolchain.md"} <= referenced


@pytest.mark.parametrize("text, problem", [
    ("see docs/missing.md", "docs/missing.md does not exist"),
    ("see ../shared/docs/toolchain.md", "../shared/docs/toolchain.md points outside the repository"),
    ("see [it](nothere.md)", "nothere.md does not exist"),
])
def test_a_broken_reference_is_reported(tmp_path, text, problem):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "method.md").write_text("# method\n[ok](method.md), the run writes OUT/report.md\n")
    (tmp_path / "mod.py").write_text('"""Formulas: docs/method.md."""\n')
    assert broken(tmp_path) == []
    (tmp_path / "other.py").write_text(f'"""{text}"""\n')
    problems = broken(tmp_path)
    assert len(problems) == 1 and problem in problems[0], problems
