"""Server-rendered HTML of the worklist and the login form (no JavaScript needed: plain
forms post the actions). Every value from a record is escaped."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlencode

from ..actions import INTERVENTIONS, SNOOZE_CHOICES
from ..alerts import AlertKind
from .worklist import STATUSES, Entry

_CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f6f8;color:#1d2733}
header{background:#1d3557;color:#fff;padding:.8rem 1.2rem;display:flex;justify-content:space-between;align-items:center}
header h1{font-size:1.2rem;margin:0} header form{display:inline} main{padding:1rem 1.2rem}
.filters{background:#fff;padding:.6rem;border-radius:6px;margin-bottom:1rem}
.alert{background:#fff;border-left:8px solid #999;border-radius:6px;padding:.7rem 1rem;margin-bottom:.8rem;
box-shadow:0 1px 2px rgba(0,0,0,.1)}
.sev-critical{border-color:#b00020}.sev-high{border-color:#e85d04}.sev-warning{border-color:#f4c430}.sev-info{border-color:#4a90d9}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:4px;color:#fff;font-weight:600;font-size:.85rem}
.b-critical{background:#b00020}.b-high{background:#e85d04}.b-warning{background:#c99a00}.b-info{background:#4a90d9}
.meta{color:#555;font-size:.9rem}.evidence{margin:.4rem 0;font-size:.9rem}.evidence li{margin:.1rem 0}
.rec{background:#eef4fb;padding:.4rem .6rem;border-radius:4px;font-size:.9rem}
.actions form{display:inline-block;margin:.4rem 1rem .2rem 0}.done{color:#2d6a4f;font-weight:600}
button{background:#1d3557;color:#fff;border:0;border-radius:4px;padding:.3rem .8rem;cursor:pointer}
.login{max-width:22rem;margin:4rem auto;background:#fff;padding:1.5rem;border-radius:8px}
.login input{display:block;width:100%;margin:.3rem 0 .8rem;padding:.4rem}.error{color:#b00020}
"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{body}</body></html>")


def login_page(error: str | None = None, next_url: str = "/") -> str:
    message = f"<p class=error id=login-error>{escape(error)}</p>" if error else ""
    return _page("medsafety queue: log in", f"""
<form class=login method=post action="/login"><h1>Pharmacist queue</h1>{message}
<input type=hidden name=next value="{escape(next_url)}">
<label>User<input name=user id=user autocomplete=username required></label>
<label>Password<input name=password id=password type=password autocomplete=current-password required></label>
<button type=submit id=login>Log in</button></form>""")


def age_text(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} d {hours % 24} h"


def _evidence(entry: Entry) -> str:
    rows, scores = [], []
    for item in entry.evidence_items:
        when = escape(str(item.get("at", ""))[:16].replace("T", " "))
        if item.get("type") == "order":
            parts = [escape(str(item.get("drug"))), escape(str(item.get("route") or ""))]
            if item.get("daily_dose"):
                parts.append(escape(str(item["daily_dose"])))
            if item.get("mme") is not None:
                parts.append(f"{item['mme']:g} MME")
            if item.get("prn"):
                parts.append("PRN")
            rows.append(f"<li>order {when}: {' · '.join(p for p in parts if p)}</li>")
        elif item.get("type") == "order_stop":
            rows.append(f"<li>stopped {when}: {escape(str(item.get('drug')))}</li>")
        elif item.get("type") == "pain_score":
            scores.append(str(item.get("score")))
            site = f" ({escape(str(item['site']))})" if item.get("site") else ""
            rows.append(f"<li>pain {when}: {item.get('score')}/10{site}</li>")
    trend = f"<div>pain trend: {' → '.join(scores)}</div>" if len(scores) > 1 else ""
    figures = ", ".join(f"{escape(str(k))}: {escape(_figure(v))}" for k, v in entry.details.items())
    return (f"<div class=evidence>{trend}<ul>{''.join(rows)}</ul>"
            f"<div class=meta>{figures}</div></div>")


def _figure(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _controls(entry: Entry, csrf: str, back: str) -> str:
    alert_id = escape(entry.record.alert_id)
    ack, snooze = entry.acknowledgement, entry.snooze
    done = ""
    if ack is not None:
        code = ack.action.intervention.value if ack.action.intervention else ""
        done = (f"<span class=done>Acknowledged by {escape(ack.action.user)}: "
                f"{escape(INTERVENTIONS.get(code, code))}</span>")
    elif snooze is not None:
        minutes = round(snooze.action.snooze_for.total_seconds() / 60) if snooze.action.snooze_for else 0
        done = f"<span class=done>Snoozed by {escape(snooze.action.user)} for {minutes} min (patient time)</span>"
    options = "".join(f"<option value={code}>{escape(text)}</option>" for code, text in INTERVENTIONS.items())
    choices = "".join(f"<option value={int(d.total_seconds() // 60)}>{escape(text)}</option>"
                      for text, d in SNOOZE_CHOICES.items())
    hidden = f"<input type=hidden name=csrf value='{escape(csrf)}'><input type=hidden name=back value='{escape(back)}'>"
    return f"""<div class=actions>{done}
<form method=post action="/alerts/{alert_id}/ack" class=ack-form>{hidden}
<select name=intervention aria-label=intervention>{options}</select>
<input name=note placeholder="note (optional)" maxlength=500 aria-label=note>
<button type=submit class=ack>Acknowledge</button></form>
<form method=post action="/alerts/{alert_id}/snooze" class=snooze-form>{hidden}
<select name=minutes aria-label="snooze for">{choices}</select><button type=submit class=snooze>Snooze</button></form>
</div>"""


def _card(entry: Entry, now: float, csrf: str, back: str) -> str:
    r = entry.record
    sev = r.severity.value
    flags = f" · assumed: {escape(', '.join(r.flags))}" if r.flags else ""
    return f"""<section class="alert sev-{sev}" id="alert-{escape(r.alert_id)}" data-alert-id="{escape(r.alert_id)}"
data-status="{entry.status}" data-severity="{sev}" data-kind="{r.kind.value}">
<div><span class="badge b-{sev}">{sev}</span> <strong>{escape(r.kind.value.replace('_', ' '))}</strong>
· patient <strong class=patient>{escape(r.patient_id)}</strong> · {escape(r.unit or 'unit unknown')}
· waiting {age_text(now - entry.first_seen)} · <span class=status>{entry.status}</span></div>
<div class=meta>raised {escape(r.raised_at.isoformat()[:16].replace('T', ' '))} (event time) · {escape(r.reason)}{flags}</div>
<p class=summary>{escape(r.summary)}</p>{_evidence(entry)}
<div class=rec>{escape(r.recommendation)}</div>{_controls(entry, csrf, back)}</section>"""


def worklist_page(entries: list[Entry], filters: dict[str, str], units: list[str], user: str, csrf: str,
                  now: float, counts: dict[str, int]) -> str:
    def select(name: str, values: list[str], label: str, blank: str | None) -> str:
        opts = [f"<option value=''>{blank}</option>"] if blank is not None else []
        opts += [f"<option value='{escape(v)}'{' selected' if filters.get(name) == v else ''}>{escape(v)}</option>"
                 for v in values]
        return f"<label>{label} <select name={name}>{''.join(opts)}</select></label> "

    back = "/?" + urlencode({k: v for k, v in filters.items() if v})
    status = filters.get("status") or "open"
    cards = "".join(_card(e, now, csrf, back) for e in entries) or f"<p id=empty>No {escape(status)} alerts.</p>"
    tally = " · ".join(f"{n} {sev}" for sev, n in counts.items() if n)
    return _page("medsafety pharmacist queue", f"""
<header><h1>Pharmacist queue <small>({len(entries)} {escape(status)}{'; open: ' + tally if tally else ''})</small></h1>
<div>{escape(user)} <form method=post action="/logout"><input type=hidden name=csrf value='{escape(csrf)}'>
<button type=submit>Log out</button></form></div></header>
<main><form class=filters method=get action="/">
{select('status', [*STATUSES, 'all'], 'Status', None)}{select('unit', units, 'Unit', 'all units')}
{select('kind', [k.value for k in AlertKind], 'Kind', 'all kinds')}<button type=submit>Filter</button></form>
<div id=worklist>{cards}</div></main>""")
