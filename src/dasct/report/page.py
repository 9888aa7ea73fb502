"""The report page: the figures of data.collect laid out as one static HTML document.

The charts are inline SVG (charts.py); the figures themselves are embedded as JSON in a
`<script type="application/json" id="dasct-report-data">`, which a browser never runs.
The page's Content-Security-Policy forbids every fetch and every script, so a page
opened from disk makes no request, whatever a defect key or a path holds; every text is
escaped besides (html.escape; the JSON with `<`, `>` and `&` as \\u escapes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from dasct.report import charts

MAX_DAYS = 60  # days a time chart draws (the latest); the JSON holds every day
# Inline styles only; no script may run and nothing may be fetched.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;
max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid
#ddd;padding-bottom:4px}h3{font-size:15px;margin:16px 0 4px}
.meta,.empty,.note{color:#666}.empty{font-style:italic}
.figures{display:flex;gap:18px;flex-wrap:wrap;margin:6px 0}
.figures div{background:#f6f6f6;border-radius:6px;padding:6px 12px}
.figures b{font-size:18px;display:block}
svg.chart{font-size:11px;display:block;margin:6px 0}svg .axis{stroke:#999}
svg .figure{fill:#222}svg .figure[data-dark]{fill:#fff}
svg .tick,svg .day,svg .col,svg .caption{fill:#666}
table{border-collapse:collapse;margin:6px 0}td,th{border-bottom:1px solid #eee;padding:3px
10px;text-align:left}th{color:#555;font-weight:600}
.ok{color:#0a6b2e;font-weight:600}.bad{color:#b00020;font-weight:600}
.key{margin-right:14px}.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
code{font-size:12px}
"""


def embedded_json(figures: dict[str, Any]) -> str:
    """The figures as JSON that cannot end the script element holding it."""
    text = json.dumps(figures, indent=1, sort_keys=True, ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _figure(name: str, value: object) -> str:
    return f"<div><b>{escape(str(value))}</b>{escape(name)}</div>"


def _table(header: tuple[str, ...], rows: Sequence[Sequence[str]], cls: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _defects(d: dict[str, Any]) -> str:
    out = ['<section id="defects"><h2>Defects per file</h2><div class="figures">',
           _figure("protected lines at HEAD", d["lines"]), _figure("files", d["files"]),
           _figure("defects", d["defects"]), "</div>"]
    if not d["top"]:
        return "".join([*out, _empty("No protected lines at HEAD."), "</section>"])
    rows = [(f["path"], [f["by_kind"][k] for k in d["kinds"]]) for f in d["top"]]
    out.append(charts.heatmap(rows, d["kinds"], label="protected lines per file and kind"))
    more = f"; {d['more_files']} more file(s) not shown" if d["more_files"] else ""
    out.append(f'<p class="note">The {len(rows)} file(s) with the most protected lines, '
               f"by kind{escape(more)}.</p>")
    out.append(_table(("file", "lines", "defects"),
                      [(f["path"], str(f["lines"]), ", ".join(f["defects"])) for f in d["top"]],
                      "files"))
    return "".join([*out, "</section>"])


def _revalidations(r: dict[str, Any]) -> str:
    out = ['<section id="revalidations"><h2>Revalidations</h2><div class="figures">',
           _figure("opened", r["opened"]), _figure("closed", r["closed"]),
           _figure("still open", r["open"]), _figure("accepted", r["accepted"]),
           _figure("rejected", r["rejected"]), "</div>"]
    if not r["days"]:
        return "".join([*out, _empty("No revalidation request in the ledger."), "</section>"])
    days, older = _latest(r["days"])
    out.append(charts.bars(days, ("opened", "closed"), line="open",
                           label="revalidations opened and closed per day"))
    out.append(f'<p class="note">{charts.legend(("opened", "closed", "open"))} (open: '
               "requests not yet accepted or rejected at the end of the day; UTC days)"
               f"{escape(older)}</p>")
    return "".join([*out, "</section>"])


def _latest(days: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The days a chart draws, and a note when older ones are left out."""
    if len(days) <= MAX_DAYS:
        return days, ""
    return days[-MAX_DAYS:], (f" The latest {MAX_DAYS} of {len(days)} days with activity "
                              "are drawn; the embedded JSON holds them all.")


def _percent(value: object) -> str:
    return "n/a" if value is None else f"{value:g}%"


def _migrations(envs: list[dict[str, Any]]) -> str:
    out = ['<section id="migrations"><h2>Migrations per environment</h2>']
    if not envs:
        return "".join([*out, _empty("No environment is configured or has state on disk."),
                        "</section>"])
    series = ("migrated", "rolled_back", "escalated", "reverted")
    for env in envs:
        m = env["migrations"]
        name = escape(env["name"])
        out += [f'<div class="environment" data-environment="{name}"><h3>{name}</h3>',
                '<div class="figures">', _figure("attempted", m["attempted"]),
                _figure("migrated", m["migrated"]), _figure("rolled back", m["rolled_back"]),
                _figure("escalated", m["escalated"]), _figure("reverted", m["reverted"]),
                _figure("success rate", _percent(m["success_percent"])), "</div>"]
        st = env["state"]
        if st["needs_attention"] is not None:
            out.append(f'<p class="bad">Needs attention: the restore of '
                       f'{escape(st["needs_attention"])} did not match its archive (dasct '
                       "migrate resolve).</p>")
        if st["in_flight"] is not None:
            out.append(f'<p class="bad">A migration of {escape(st["in_flight"])} was '
                       "interrupted: the next run recovers it.</p>")
        if m["days"]:
            days, older = _latest(m["days"])
            days = [{**day, "success": _percent(day["success_percent"])} for day in days]
            out.append(charts.bars(days, series, caption="success",
                                   label=f"migrations into {env['name']} per day"))
            if older:
                out.append(f'<p class="note">{escape(older.strip())}</p>')
        else:
            out.append(_empty(f"No migration has run in {env['name']}."))
        out.append("</div>")
    out.append(f'<p class="note">{charts.legend(series)} (UTC days; under each day its '
               "success rate: migrated over attempted)</p>")
    return "".join([*out, "</section>"])


def _warranty(rows: list[dict[str, Any]]) -> str:
    out = ['<section id="warranty"><h2>Enhancements in warranty</h2>']
    if not rows:
        return "".join([*out, _empty("No enhancement is deployed."), "</section>"])
    wp = sum(1 for r in rows if r["status"] == "WP")
    out.append(f'<p class="note">{wp} of {len(rows)} deployed enhancement(s) under warranty '
               "(WP); CP: the warranty period is over.</p>")
    out.append(_table(("environment", "enhancement", "status", "deployed", "warranty ends",
                       "defects"),
                      [(r["environment"], r["enhancement"], r["status"], r["deployed_at"],
                        r["warranty_ends"], ", ".join(r["defects"])) for r in rows],
                      "warranty"))
    return "".join([*out, "</section>"])


def _audit(envs: list[dict[str, Any]]) -> str:
    out = ['<section id="audit"><h2>Audit verification</h2>']
    if not envs:
        return "".join([*out, _empty("No audit log to verify."), "</section>"])
    rows = []
    for env in envs:
        a = env["audit"]
        result = ("ok" if a["ok"] else f"FAILED: {len(a['problems'])} problem(s)")
        rows.append((env["name"], result, str(a["records"]), a["last_record_at"] or "-",
                     a["checked_at"]))
    out.append(_table(("environment", "result", "records", "last record", "verified at"),
                      rows, "audit"))
    for env in envs:
        a = env["audit"]
        if a["problems"]:
            items = "".join(f"<li>{escape(p)}</li>" for p in a["problems"])
            out.append(f'<p class="bad">{escape(env["name"])}:</p><ul>{items}</ul>')
        elif a["proves"]:
            out.append(f'<p class="note">{escape(env["name"])}: {escape(a["proves"])}</p>')
    return "".join([*out, "</section>"])


def _nothing(f: dict[str, Any]) -> bool:
    return (not f["defects"]["lines"] and not f["revalidations"]["opened"]
            and not any(e["migrations"]["attempted"] or e["migrations"]["reverted"]
                        for e in f["environments"]) and not f["warranty"])


def render(figures: dict[str, Any]) -> str:
    """The whole page for figures (data.collect)."""
    head = str(figures["head"])[:12] or "no commit yet"
    title = f"dasct report: {figures['repository']}"
    intro = ('<p class="empty" id="no-data">No data yet: no protected line, no revalidation '
             "request, no migration. Record a fix commit (docs/protected-lines.md), run the QA "
             "loop (docs/qa.md) or migrate an enhancement (docs/migration.md).</p>"
             if _nothing(figures) else "")
    return "".join([
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">HEAD <code>{escape(head)}</code>, generated '
        f"{escape(figures['generated_at'])} (UTC)</p>", intro,
        "".join(f'<p class="bad problem">{escape(p)}</p>' for p in figures["problems"]),
        _defects(figures["defects"]), _revalidations(figures["revalidations"]),
        _migrations(figures["environments"]), _warranty(figures["warranty"]),
        _audit(figures["environments"]),
        '<script type="application/json" id="dasct-report-data">',
        embedded_json(figures), "</script></body></html>\n",
    ])
