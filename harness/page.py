"""The leaderboard as text: one ``Page`` rendered to GitHub Markdown and to a static HTML page.

The page opens with the verdicts (``harness.report.verdicts``), then a section per topic of
tables and figures. Cells and notes are plain text with Markdown's `code` and **strong** spans;
Markdown keeps them, HTML turns them into <code> and <strong>, so both pages read the same.
The HTML page stands alone (figures inlined), fits any screen (viewport tag, tables scroll in
their own box) and has no scripts.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.collect import Problem
from harness.figures import FigureOut

if TYPE_CHECKING:
    from harness.report import Table, Verdict


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)  # Table, FigureOut or a paragraph (str)
    folded: list = field(default_factory=list)  # shown behind <details> in HTML


@dataclass
class Page:
    title: str
    facts: list[tuple[str, str]]  # the header: hardware, date, torch, code
    verdicts: list[Verdict]
    intro: str
    sections: list[Section]
    problems: list[Problem]
    base: Path  # the board's folder: figure paths are relative to it
    verdict_tables: list = field(default_factory=list)  # Tables: the board's opening


# -- verdicts in words ------------------------------------------------------------------------


def _g(x: float) -> str:
    return f"{x:.4g}"


def verdict_line(v: Verdict) -> str:
    """One workload's verdict as a sentence with Markdown spans."""
    from harness.report import fmt_interval, fmt_speedup

    head = f"**{v.workload} ({v.variant})**"
    if v.winner is not None:
        text = (
            f"{head}: **{v.winner}** reached {v.target} in "
            f"{fmt_interval(v.time_s, v.lo, v.hi)} (median over studies, 95% interval)"
        )
        if v.runner_up is None:
            return text + "; the only method run."
        sp = fmt_speedup(v.speedup, v.speedup_lo, v.speedup_hi)
        return text + (
            f"; **{v.verdict}** from {v.runner_up}: P(faster than {v.runner_up}) = "
            f"{v.p_faster:.2f}, speed-up {sp} (paired over studies, 95% interval)."
        )
    text = f"{head}: no method reached {v.target}"
    if v.closest is not None:
        gap = abs(v.target_value - v.closest_value)
        text += f"; closest {v.closest} at {_g(v.closest_value)}, {gap:.3g} short"
    if v.partial:
        some = ", ".join(f"{s} {k}/{n}" for s, k, n in v.partial)
        text += f"; reached in some studies: {some}"
    return text + "."


def nothing_reached(verdicts: list[Verdict]) -> bool:
    return bool(verdicts) and all(v.winner is None for v in verdicts)


BANNER = (
    "Nothing reached a target yet: on every workload, no method's median over studies reached "
    "the target. Below, per workload, how close the field came (best metric, median over "
    "studies, guards not applied) and who reached it in some of its studies."
)


# -- Markdown ---------------------------------------------------------------------------------


def _md_cell(x: str) -> str:
    return x.replace("|", "\\|")


def _md_table(t: Table, level: int) -> list[str]:
    out = [f"{'#' * level} {t.title}", "", t.note, ""] if t.title else []
    out += [
        "| " + " | ".join(map(_md_cell, t.headers)) + " |",
        "|" + "---|" * len(t.headers),
    ]
    return out + ["| " + " | ".join(map(_md_cell, r)) + " |" for r in t.rows] + [""]


def _md_block(b, base: Path, level: int) -> list[str]:
    if isinstance(b, FigureOut):
        rel = b.path.relative_to(base).as_posix()
        return [f"![{b.title}]({rel})", "", f"*{b.caption}*", ""]
    if isinstance(b, str):
        return [b, ""]
    return _md_table(b, level)


def markdown(page: Page) -> str:
    out = [f"# {page.title}", ""]
    out += [" · ".join(f"**{k}**: {v}" for k, v in page.facts), ""]
    out += ["## Verdicts", ""]
    for t in page.verdict_tables:
        out += _md_block(t, page.base, 3)
    if nothing_reached(page.verdicts):
        out += [f"> **{BANNER}**", ""]
    out += [f"- {verdict_line(v)}" for v in page.verdicts] + ["", page.intro, ""]
    for s in page.sections:
        out += [f"## {s.title}", ""]
        for b in [*s.blocks, *s.folded]:
            out += _md_block(b, page.base, 3)
    out += ["## Problems", ""]
    out += [f"- `{p.path}`: {p.reason}" for p in page.problems] or ["None."]
    return "\n".join(out) + "\n"


# -- HTML -------------------------------------------------------------------------------------

CSS = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{font:17px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;
 max-width:64rem;margin:0 auto;padding:1rem 1.25rem 3rem;overflow-wrap:break-word}
h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.3rem;margin:2rem 0 .5rem;
 border-bottom:1px solid #ddd}h3{font-size:1.1rem;margin:1.5rem 0 .4rem}
code{overflow-wrap:anywhere;font-size:.92em;background:#f2f2f2;padding:0 .2em;border-radius:3px}
.facts{color:#444;margin:0 0 1rem}.facts span{display:inline-block;margin-right:1rem}
.banner{background:#fff4e0;border-left:5px solid #e08a00;padding:.75rem 1rem;margin:1rem 0}
.verdicts{list-style:none;padding:0;margin:0}
.verdicts li{border:1px solid #ddd;border-radius:6px;padding:.6rem .8rem;margin:.5rem 0}
.verdicts li.won{border-left:5px solid #2ca02c}.verdicts li.miss{border-left:5px solid #bbb}
.note{color:#444}
.scroll{overflow-x:auto;max-width:100%;margin:.5rem 0 1.5rem;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td{font-variant-numeric:tabular-nums}
figure{margin:1rem 0 2rem}img{max-width:100%;height:auto;display:block}
figcaption{color:#444;font-size:.95rem;margin-top:.4rem}
details{margin:.5rem 0 1.5rem}summary{cursor:pointer;color:#0b5cad}
@media (max-width:600px){body{font-size:15px;padding:.75rem}h1{font-size:1.35rem}
 table{font-size:.875rem}}
"""


def inline(text: str) -> str:
    """Escaped text with Markdown `code` and **strong** spans as HTML."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _html_table(t: Table) -> str:
    head = "".join(f"<th>{inline(h)}</th>" for h in t.headers)
    body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in t.rows)
    top = f'<h3>{inline(t.title)}</h3>\n<p class="note">{inline(t.note)}</p>\n' if t.title else ""
    return (
        f'{top}<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _html_figure(f: FigureOut) -> str:
    data = base64.b64encode(f.path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/svg+xml;base64,{data}" alt="{html.escape(f.title)}">'
        f"<figcaption>{inline(f.caption)}</figcaption></figure>"
    )


def _html_block(b) -> str:
    if isinstance(b, FigureOut):
        return _html_figure(b)
    if isinstance(b, str):
        return f'<p class="note">{inline(b)}</p>'
    return _html_table(b)


def _html_verdicts(page: Page) -> str:
    parts = ['<h2 id="verdicts-h">Verdicts</h2>']
    parts += [_html_table(t) for t in page.verdict_tables]
    if nothing_reached(page.verdicts):
        parts.append(f'<div class="banner" id="banner"><strong>{inline(BANNER)}</strong></div>')
    items = "".join(
        f'<li class="{"won" if v.winner else "miss"}">{inline(verdict_line(v))}</li>'
        for v in page.verdicts
    )
    parts.append(f'<ul class="verdicts" id="verdicts">{items}</ul>')
    return "\n".join(parts)


def html_page(page: Page) -> str:
    facts = "".join(
        f"<span><strong>{inline(k)}</strong>: {inline(v)}</span>" for k, v in page.facts
    )
    parts = [
        f'<header><h1>{html.escape(page.title)}</h1><p class="facts">{facts}</p></header>',
        _html_verdicts(page),
        f'<p class="note">{inline(page.intro)}</p>',
    ]
    for s in page.sections:
        parts.append(f'<section><h2 id="{_slug(s.title)}">{inline(s.title)}</h2>')
        parts += [_html_block(b) for b in s.blocks]
        if s.folded:
            inner = "\n".join(_html_block(b) for b in s.folded)
            parts.append(f"<details><summary>{len(s.folded)} more</summary>{inner}</details>")
        parts.append("</section>")
    items = (
        "".join(
            f"<li><code>{html.escape(str(p.path))}</code>: {html.escape(p.reason)}</li>"
            for p in page.problems
        )
        or "<li>None.</li>"
    )
    parts.append(f'<h2 id="problems-h">Problems</h2>\n<ul id="problems">{items}</ul>')
    body = "\n".join(parts)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(page.title)}</title><style>{CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )
