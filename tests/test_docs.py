"""The docs: a README that stays a front page, links that resolve, and results pages that are exactly
what their committed data renders to (benchmarks/pages.py)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import pages

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKDOWN = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
WEB_ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*:")  # https:, mailto:


def anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings: lower case, punctuation dropped, spaces as hyphens,
    a repeated heading numbered."""
    seen: Counter[str] = Counter()
    slugs = set()
    for heading in HEADING.findall(FENCED.sub("", markdown)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        slugs.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return slugs


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """The relative links of a Markdown file (outside code) whose file is not under ``root`` (the
    repo), or whose ``#anchor`` is no heading of the Markdown file it names."""
    broken = []
    for target in LINK.findall(INLINE_CODE.sub("", FENCED.sub("", path.read_text()))):
        if WEB_ADDRESS.match(target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not (linked.is_file() and linked.is_relative_to(root)):
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
            broken.append(target)
    return broken


def test_the_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines; move detail to docs/"


def test_docs_has_its_pages_and_every_results_page():
    names = {path.stem for path in DOCS.glob("*.md")}
    assert len(names) >= 4
    assert set(pages.PAGES) <= names


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_link_check_finds_missing_files_and_anchors_and_skips_code_and_web_addresses(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## Its `code` section\n")
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n[ok](other.md) [ok](other.md#its-code-section) [ok](#page) [web](https://x.org/a)\n"
                    "[missing](nowhere.md) [bad anchor](other.md#nothing) `[in code](nowhere.md)`\n\n"
                    "```\n[in a block](nowhere.md)\n```\n")
    assert broken_links(page, tmp_path) == ["nowhere.md", "other.md#nothing"]


@pytest.mark.parametrize("page", list(pages.PAGES))
def test_each_results_page_is_what_its_data_renders_to(page, tmp_path):
    rendered = pages.write_page(page, tmp_path)
    assert rendered.read_bytes() == (DOCS / f"{page}.md").read_bytes(), (
        f"docs/{page}.md differs from its data: edit docs/data/{page}.json or {page}.template.md, then "
        f"run {pages.RENDER_COMMANDS[page]}")


@pytest.mark.parametrize("page", list(pages.PAGES))
def test_each_data_file_is_strict_json_as_the_benchmarks_write_it(page):
    text = (pages.DATA / f"{page}.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, allow_nan=False) + "\n"


def test_a_changed_measurement_changes_the_page():
    """Acrobot's mean final score over seeds, -72.4 in the data, edited to -80.0: the page says -80.0."""
    data = pages.load("classic_control")
    template = (pages.DATA / "classic_control.template.md").read_text()
    acrobot = next(row for row in data["suite"]["rows"] if row["env_id"] == "Acrobot-v1")
    assert "| Acrobot-v1 | 1,000,000 | -72.4 ± 2.4 (5 seeds) |" in pages.render("classic_control", data, template)
    acrobot["score_mean"] = -80.0
    assert "| Acrobot-v1 | 1,000,000 | -80.0 ± 2.4 (5 seeds) |" in pages.render("classic_control", data, template)


def test_a_section_the_template_does_not_place_is_refused():
    data = {**pages.load("pixels"), "procgen": {}}
    with pytest.raises(ValueError, match="procgen"):
        pages.render("pixels", data, (pages.DATA / "pixels.template.md").read_text())


def test_an_atari_learning_run_of_one_game_keeps_the_rows_of_the_others():
    """``benchmarks.precision --atari --games pong`` adds Pong's rows beside Breakout's, and a seed run
    again replaces its own row."""
    from benchmarks.precision import with_earlier_rows

    def row(game, seed, score):
        return {"game": game, "seed": seed, "fp32": {"mean_score_100": score}}

    breakout = {"rows": [row("breakout", 1, 20.0), row("breakout", 2, 21.0)], "command": "--games breakout"}
    pong = with_earlier_rows({"rows": [row("pong", 1, 5.0)], "command": "--games pong --seeds 1"}, breakout)
    assert [(r["game"], r["seed"]) for r in pong["rows"]] == [("breakout", 1), ("breakout", 2), ("pong", 1)]
    assert pong["command"] == "--games breakout\n--games pong --seeds 1"
    again = with_earlier_rows({"rows": [row("breakout", 2, 30.0)], "command": "--games breakout --seeds 2"}, pong)
    assert [r["fp32"]["mean_score_100"] for r in again["rows"]] == [20.0, 30.0, 5.0]
    assert with_earlier_rows(breakout, None) is breakout
