"""The repository stands alone: no file cites the reference notes it was built from (they are not
in the repository), and every ``docs/<name>.md`` path, with its ``#anchor``, that a file cites
exists, as does every relative Markdown link inside ``docs/``."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from harness.discovery import repo_root

ROOT = repo_root()
# the notes outside the repository; written as an alternation so this file does not match itself
NOTES = re.compile(r"\b(?:METHODS|WORKLOADS|DESIGN|SLURM|STYLE)\.md\b")
# docs/<path>.md cited from anywhere (also as ../../docs/...), not part of a URL
DOCS_REF = re.compile(r"(?<![\w./-])(?:\.\./)*docs/([\w/-]+\.md)(?:#([\w-]+))?")
# relative Markdown links inside docs/*.md: [text](other.md#anchor), [text](#anchor)
MD_LINK = re.compile(r"\]\((?!\w+://)([^)\s#]*)(?:#([^)\s]+))?\)")
SKIP_DIRS = {".git", ".venv", "runs", "__pycache__", ".pytest_cache", ".ruff_cache"}
MAX_BYTES = 2_000_000  # larger files are data (results, figures), not prose


def tracked_files(root: Path = ROOT) -> list[Path]:
    """Files git tracks plus untracked ones it does not ignore; a walk if git is unavailable."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        names = [n for n in out.decode().split("\0") if n]
        return sorted({root / n for n in names if (root / n).is_file()})
    except (OSError, subprocess.SubprocessError):
        return sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(root).parts)
        )


def texts(root: Path = ROOT) -> Iterator[tuple[Path, str]]:
    for path in tracked_files(root):
        if path.stat().st_size > MAX_BYTES:
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary: figures, parquet, checkpoints


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The anchors of a Markdown file's headings (outside code fences), duplicates numbered."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return frozenset(out)


def _target_problem(target: Path, anchor: str | None, cited: str) -> str | None:
    if not target.is_file():
        return f"cites {cited}, which does not exist"
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"cites {cited}, but {target.name} has no heading with anchor #{anchor}"
    return None


def link_problems(path: Path, text: str, root: Path = ROOT) -> list[str]:
    """One line per bad citation in ``text`` (the content of ``path``)."""
    where = path.relative_to(root) if path.is_relative_to(root) else path
    problems = []
    for n, line in enumerate(text.splitlines(), 1):
        for m in NOTES.finditer(line):
            problems.append(
                f"{where}:{n}: cites {m.group(0)}, which is not in the repository; cite docs/ "
                "or a primary source"
            )
        for m in DOCS_REF.finditer(line):
            cited = "docs/" + m.group(1) + (f"#{m.group(2)}" if m.group(2) else "")
            problem = _target_problem(root / "docs" / m.group(1), m.group(2), cited)
            if problem:
                problems.append(f"{where}:{n}: {problem}")
        if path.suffix == ".md" and path.parent == root / "docs":
            for m in MD_LINK.finditer(line):
                target = (path.parent / m.group(1)).resolve() if m.group(1) else path
                problem = _target_problem(target, m.group(2), m.group(0)[2:-1])
                if problem:
                    problems.append(f"{where}:{n}: {problem}")
    return problems


def test_no_file_cites_missing_notes_or_docs():
    problems = [p for path, text in texts() for p in link_problems(path, text)]
    assert not problems, "\n".join(problems)


def test_the_scan_sees_the_docs_and_the_code():
    names = {p.relative_to(ROOT).as_posix() for p, _ in texts()}
    assert {"docs/design.md", "harness/runner.py", "tests/test_docs_links.py"} <= names


def test_slugs_follow_github():
    assert slug("A run, step by step (`harness/runner.py`)") == "a-run-step-by-step-harnessrunnerpy"
    assert slug("### `sgd_nesterov`".lstrip("# ")) == "sgd_nesterov"
    assert "generic-methods" in anchors(ROOT / "docs" / "how-it-works.md")


@pytest.mark.parametrize(
    "text,expected",
    [
        (f"see {'METHODS'}.md section 6", "not in the repository"),
        (f"({'SLURM'}.md)", "not in the repository"),
        # written in two parts, so that this file does not cite them itself
        ("see docs/" + "nowhere.md", "/nowhere.md, which does not exist"),
        ("see ../../docs/" + "nowhere.md", "/nowhere.md, which does not exist"),
        ("see docs/" + "design.md#no-such-heading", "no heading with anchor #no-such-heading"),
    ],
    ids=["methods-note", "slurm-note", "missing-doc", "missing-doc-relative", "missing-anchor"],
)
def test_bad_citations_are_named(text, expected):
    problems = link_problems(ROOT / "README.md", text)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize(
    "text",
    [
        "see docs/design.md#the-clock and docs/scoring.md",
        "[how](../../docs/how-it-works.md#generic-methods)",
        "https://example.org/docs/nowhere.md is someone else's",
    ],
)
def test_good_citations_pass(text):
    assert link_problems(ROOT / "README.md", text) == []


def test_relative_links_inside_docs_are_checked():
    page = ROOT / "docs" / "design.md"
    assert link_problems(page, "[x](scoring.md#intervals) [y](#the-clock)") == []
    bad = link_problems(page, "[x](missing.md) [y](#no-such-heading)")
    assert len(bad) == 2, bad
