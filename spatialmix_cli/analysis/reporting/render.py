"""report.md (images beside it) and report.html (images inlined as base64, viewable offline)."""

from __future__ import annotations

import base64
import html

from ...safefiles import read_bytes
from .claims import CI_RULE
from .report import Report, Table
from .stats import FAILS, HOLDS, INCONCLUSIVE, UNKNOWN

NUMBERS_NOTE = (
    "The numbers behind these tables and figures, as CSV beside this report: runs.csv (one row per run: "
    "the config keys that vary, seed, test and train metric, epochs, seconds, robust accuracies) and "
    "settings.csv (one row per setting: mean, std and n over seeds); summary.json holds the same rows."
)

_MARK = {
    HOLDS: "✅ holds",
    FAILS: "❌ does not hold",
    INCONCLUSIVE: "◐ inconclusive",
    UNKNOWN: "… not enough runs",
}


# In HTML a coloured mark drawn by CSS (a plain disc), then the verdict in words: no emoji, which a
# browser without an emoji font (headless Chromium on a server) draws as empty boxes.
_CSS_CLASS = {HOLDS: "holds", FAILS: "fails", INCONCLUSIVE: "inconclusive", UNKNOWN: "unknown"}
VERDICT_CSS = (
    ".mark{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin-right:.3em;"
    "vertical-align:-.05em;border:1px solid #555}.mark.holds{background:#2a9d3a}.mark.fails{background:#d03030}"
    ".mark.inconclusive{background:linear-gradient(90deg,#e0a000 50%,#fff 50%)}.mark.unknown{background:#fff}"
    ".warn{color:#b00020;font-weight:bold}"
)


def _verdict(claim) -> str:  # noqa: ANN001
    text = _MARK.get(claim.verdict, "… " + claim.verdict)
    return text + (" ⚠ masking checks failed" if claim.flagged else "")


def _html_verdict(claim) -> str:  # noqa: ANN001
    """The verdict as ``<span class='mark holds'></span>holds`` (and the masking warning in words)."""
    css = _CSS_CLASS.get(claim.verdict, "unknown")
    text = f"<span class='mark {css}'></span>{html.escape(claim.verdict)}"
    return text + (" <span class='warn'>(masking checks failed)</span>" if claim.flagged else "")


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> str:
    lines = [
        f"### {table.title}",
        "",
        "| " + " | ".join(table.columns) + " |",
        "|" + "---|" * len(table.columns),
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


def _header(report: Report) -> list[str]:
    m = report.summary()["machine"]
    return [
        f"Generated {m['date']} on {m['platform']} ({m['cpu_count']} CPUs, torch {m['torch']}"
        + (f", {m['cuda']}" if m["cuda"] else ", no GPU")
        + f"), commit {m['commit'] or 'unknown'}.",
        f"{len(report.runs)} finished runs"
        + (f"; {len(report.skipped)} folders skipped (listed at the end)." if report.skipped else "."),
    ]


def render_markdown(report: Report) -> str:
    out = [
        "# spatialmix report",
        "",
        *_header(report),
        "",
        "## Claims",
        "",
        f"Verdicts: {CI_RULE}.",
        "",
        "| # | claim | verdict | rule (thresholds) | numbers |",
        "|---|---|---|---|---|",
    ]
    for c in report.claims:
        evidence = "<br>".join(_md_cell(e) for e in c.evidence) or "—"
        out.append(f"| {c.id} | {_md_cell(c.text)} | {_verdict(c)} | {_md_cell(c.rule)} | {evidence} |")
    out += ["", "## Figures", ""]
    for caption, path in report.figures:
        rel = path.relative_to(report.out).as_posix()
        out += [f"**{caption}**", "", f"![{caption}]({rel})", ""]
    out += ["## Tables", "", NUMBERS_NOTE, ""]
    out += [_md_table(t) for t in report.tables]
    if report.skipped:
        out += ["## Skipped folders", "", *[f"- {_md_cell(s)}" for s in report.skipped], ""]
    return "\n".join(out) + "\n"


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<h3>{html.escape(table.title)}</h3><table><tr>{head}</tr>{body}</table>"


# After load, record on <body> how many images loaded and how many are broken, and how tall the page is
# (px), so a headless browser (reporting/browser.py) can tell from the DOM it dumps. Inline, no network: the page stays offline.
IMAGE_CHECK_SCRIPT = (
    "<script>window.addEventListener('load',function(){var i=Array.from(document.images);"
    "var bad=i.filter(function(x){return !x.complete||x.naturalWidth===0}).length;"
    "document.body.dataset.imagesLoaded=i.length-bad;document.body.dataset.imagesBroken=bad;"
    "document.body.dataset.pageHeight=Math.ceil(document.documentElement.scrollHeight);});</script>"
)


def render_html(report: Report) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>spatialmix report</title><style>",
        "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}",
        "table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:3px 6px;"
        "font-size:13px;vertical-align:top}img{max-width:100%}",
        VERDICT_CSS,
        "</style></head><body>",
        "<h1>spatialmix report</h1>",
        *[f"<p>{html.escape(h)}</p>" for h in _header(report)],
        f"<h2>Claims</h2><p>Verdicts: {html.escape(CI_RULE)}.</p><table><tr><th>#</th><th>claim</th><th>verdict</th><th>rule (thresholds)</th>"
        "<th>numbers</th></tr>",
    ]
    for c in report.claims:
        evidence = "<br>".join(html.escape(e) for e in c.evidence) or "—"
        parts.append(
            f"<tr><td>{c.id}</td><td>{html.escape(c.text)}</td><td>{_html_verdict(c)}</td>"
            f"<td>{html.escape(c.rule)}</td><td>{evidence}</td></tr>"
        )
    parts.append("</table><h2>Figures</h2>")
    for caption, path in report.figures:
        data = base64.b64encode(read_bytes(path)).decode()
        parts.append(
            f"<h3>{html.escape(caption)}</h3><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
        )
    parts.append(f"<h2>Tables</h2><p>{html.escape(NUMBERS_NOTE)}</p>")
    parts += [_html_table(t) for t in report.tables]
    if report.skipped:
        parts.append(
            "<h2>Skipped folders</h2><ul>"
            + "".join(f"<li>{html.escape(s)}</li>" for s in report.skipped)
            + "</ul>"
        )
    parts.append(IMAGE_CHECK_SCRIPT)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
