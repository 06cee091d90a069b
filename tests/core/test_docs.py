"""The documentation in the repo holds together: links and anchors resolve, code comments point
at sections that exist, and the README stays a front page."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SKIPPED_DIRS = {".venv", ".git", "var", "node_modules", "__pycache__", ".pytest_cache"}
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# Built in two parts so that this file does not match itself.
DOCS_REFERENCE = re.compile(r"\b(" + "docs" + r"/[\w./-]+?\.md)(?:#([\w-]+))?")
OLD_CITATIONS = ("CONTRACT" + " §", "protocols" + ".md")


def _walk(suffix: str) -> Iterator[Path]:
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            if name.endswith(suffix):
                yield Path(directory) / name


def _markdown_files() -> list[Path]:
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md"]
    return [p for p in pages if p.exists()] + sorted((ROOT / "docs").rglob("*.md"))


def _prose_lines(path: Path) -> Iterator[str]:
    """The lines of a Markdown file outside fenced code blocks."""
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text lower-cased, punctuation dropped, spaces
    turned into hyphens (inline code and link markup count as their text)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose_lines(path):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _target(base: Path, link: str) -> tuple[Path, str]:
    path, _, anchor = link.partition("#")
    target = (base / path).resolve() if path else base
    if target.is_dir():
        target = target / "README.md"
    return target, anchor


def _broken(target: Path, anchor: str) -> str | None:
    if not target.exists():
        return f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target} is missing"
    if anchor and target.suffix == ".md" and anchor not in anchors_of(target):
        return f"no heading #{anchor} in {target.relative_to(ROOT)}"
    return None


def test_the_slugs_follow_github() -> None:
    assert github_slug("Creating an app (admin API key)") == "creating-an-app-admin-api-key"
    assert github_slug("`standard` — signed JSON") == "standard--signed-json"
    assert github_slug("Limits and pacing") == "limits-and-pacing"


def test_every_link_and_anchor_in_the_markdown_resolves() -> None:
    broken = []
    for page in _markdown_files():
        for line in _prose_lines(page):
            for link in LINK.findall(re.sub(r"`[^`]*`", "", line)):
                if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # https:, mailto:
                    continue
                if link.startswith("#"):
                    target, anchor = page, link[1:]
                else:
                    target, anchor = _target(page.parent, link)
                problem = _broken(target, anchor)
                if problem:
                    broken.append(f"{page.relative_to(ROOT)}: ({link}) {problem}")
    assert broken == []


def test_every_docs_reference_in_the_code_resolves() -> None:
    broken = []
    references = 0
    for source in _walk(".py"):
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            for path, anchor in DOCS_REFERENCE.findall(line):
                references += 1
                problem = _broken(ROOT / path, anchor)
                if problem:
                    broken.append(f"{source.relative_to(ROOT)}:{number}: {problem}")
    assert references, "no docs/… references found: the pattern no longer matches"
    assert broken == []


def test_no_code_cites_documents_that_are_not_in_the_repo() -> None:
    citing = [
        f"{source.relative_to(ROOT)}:{number}"
        for source in _walk(".py")
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1)
        if any(citation in line for citation in OLD_CITATIONS)
    ]
    assert citing == []


def test_the_readme_stays_a_front_page() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


def test_every_environment_variable_is_in_the_operations_guide() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    documented = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    variables = re.findall(r"^([A-Z][A-Z0-9_]+)=", example, re.M)
    assert variables
    assert [name for name in variables if f"`{name}`" not in documented] == []
