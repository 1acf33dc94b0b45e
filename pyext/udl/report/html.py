"""Render report results (the dict written to results.json) as one self-contained HTML page."""

from __future__ import annotations

import html
from typing import Any

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em;vertical-align:top}figure img{max-width:520px}
figcaption{font-size:.9em;color:#555;max-width:520px}.ok{color:#070}.bad{color:#b00}
.na{color:#777}pre{background:#fafafa;border:1px solid #ddd;padding:.6em;overflow-x:auto}
nav a{margin-right:1em}
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<h4>{html.escape(title)}</h4>" if title else ""
    return f"{cap}<table><tr>{head}</tr>{body}</table>"


def _section(name: str, sec: dict[str, Any]) -> str:
    parts = [f'<h2 id="{name}">{html.escape(sec["title"])} <small>({sec["seconds"]} s)</small></h2>']
    if sec["status"] != "ok":
        parts.append(f'<p class="bad">This section failed.</p><pre>{html.escape(sec["error"] or "")}</pre>')
        return "\n".join(parts)
    if sec["summary"]:
        parts.append(f"<p>{html.escape(sec['summary'])}</p>")
    if sec["claims"]:
        rows = []
        for c in sec["claims"]:
            verdict = {True: '<span class="ok">holds</span>', False: '<span class="bad">does not hold</span>',
                       None: '<span class="na">undecided</span>'}[c["holds"]]
            rows.append(f"<tr><td>{html.escape(c['claim'])}</td><td>{html.escape(c['paper'])}</td>"
                        f"<td>{html.escape(c['ours'])}</td><td>{verdict}</td></tr>")
        parts.append("<h4>Paper's claims vs this run</h4><table><tr><th>claim</th><th>paper</th>"
                     "<th>this run</th><th>verdict</th></tr>" + "".join(rows) + "</table>")
    for t in sec["tables"]:
        parts.append(_table(t["title"], t["header"], t["rows"]))
    for path, caption in sec["figures"]:
        parts.append(f'<figure><img src="{html.escape(path)}" alt="{html.escape(caption)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    if sec["numbers"]:
        parts.append(_table("Numbers", ["name", "value"], [[k, v] for k, v in sec["numbers"].items()]))
    for note in sec["notes"]:
        parts.append(f"<p><em>{html.escape(note)}</em></p>")
    return "\n".join(parts)


def render(results: dict[str, Any]) -> str:
    sections = results["sections"]
    nav = " ".join(f'<a href="#{n}">{html.escape(s["title"])}</a>' for n, s in sections.items())
    mode = "quick" if results["quick"] else "full"
    body = "\n".join(_section(n, s) for n, s in sections.items())
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>udl report</title>"
        f"<style>{_CSS}</style></head><body><h1>udl report</h1>"
        f"<p>Mode: {mode}; device: {html.escape(results['device'])}; seed: {results['seed']}; "
        f"started {html.escape(results['started'])}.</p><nav>{nav}</nav>{body}</body></html>"
    )
