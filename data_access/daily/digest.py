"""The daily digest e-mail: the radar, red items first, then amber, each with a link to the
page that settles it; plain text and HTML. Sent through `[smtp]` to `roles.dpo`, with
`roles.deputy` in copy when an item is escalated (`acks.due_for_escalation`).

Nothing personal beyond what the DPO already sees: request ids and counts, never a data
subject's name or e-mail (the radar's items hold none).
"""

from __future__ import annotations

import html
import smtplib
from collections.abc import Iterable
from datetime import date
from email.message import EmailMessage

import pandas as pd

from data_access.settings import Smtp

SECTIONS = (("red", "Red: overdue or due within days"), ("amber", "Amber: coming due"))


def subject_line(frame: pd.DataFrame, as_of: date, *, escalated: int = 0) -> str:
    red, amber = (int((frame["severity"] == s).sum()) for s in ("red", "amber"))
    prefix = f"ESCALATED ({escalated}) " if escalated else ""
    return f"{prefix}DPO daily digest {as_of.isoformat()}: {red} red, {amber} amber"


def link(base_url: str, path: str) -> str:
    """The item's address: `base_url` (the `[daily] dashboard_url`) joined with its path;
    the path alone ("/request?id=17") when no address is configured."""
    return f"{base_url.rstrip('/')}/{path}" if base_url else f"/{path}"


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """The radar's rows as the digest lists them: red first, then amber, each soonest
    first (the radar's own order within a severity)."""
    rank = frame["severity"].map({"red": 0, "amber": 1})
    return frame.assign(_rank=rank).sort_values("_rank", kind="stable").drop(columns="_rank")


def text_body(
    frame: pd.DataFrame,
    as_of: date,
    *,
    base_url: str = "",
    horizon_days: int = 14,
    escalated: Iterable[str] = (),
) -> str:
    """The plain-text digest: a line per item, "<due> <what> (<rule>) <link>"."""
    escalated = set(escalated)
    lines = [
        f"Deadline radar as of {as_of.isoformat()} (Europe/Oslo): duties due within "
        f"{horizon_days} days, and everything overdue.",
        "",
    ]
    if escalated:
        lines += [
            f"{len(escalated)} red item(s) unacknowledged for more than 24 hours (marked "
            "ESCALATED).",
            "",
        ]
    if frame.empty:
        lines.append(f"Nothing is due within {horizon_days} days and nothing is overdue.")
    for severity, title in SECTIONS:
        rows = frame[frame["severity"] == severity]
        if rows.empty:
            continue
        lines += [f"{title} ({len(rows)})", "-" * len(title)]
        for row in rows.itertuples():
            mark = "ESCALATED " if row.key in escalated else ""
            rule = f" ({row.rule})" if row.rule else ""
            lines.append(
                f"{row.due_on.isoformat()}  {mark}{row.what}{rule}  {link(base_url, row.link)}"
            )
        lines.append("")
    lines.append(f"Radar: {link(base_url, 'radar')}")
    return "\n".join(lines) + "\n"


def html_body(
    frame: pd.DataFrame,
    as_of: date,
    *,
    base_url: str = "",
    horizon_days: int = 14,
    escalated: Iterable[str] = (),
) -> str:
    """The HTML digest: one table per severity, each item linked; every value escaped."""
    escalated = set(escalated)
    esc = html.escape
    parts = [
        "<html><body>",
        f"<p>Deadline radar as of {as_of.isoformat()} (Europe/Oslo): duties due within "
        f"{horizon_days} days, and everything overdue.</p>",
    ]
    if frame.empty:
        parts.append(f"<p>Nothing is due within {horizon_days} days and nothing is overdue.</p>")
    colours = {"red": "#c0392b", "amber": "#d68910"}
    for severity, title in SECTIONS:
        rows = frame[frame["severity"] == severity]
        if rows.empty:
            continue
        parts.append(f'<h3 style="color:{colours[severity]}">{esc(title)} ({len(rows)})</h3>')
        parts.append("<table><tr><th>Due</th><th>What</th><th>Rule</th></tr>")
        for row in rows.itertuples():
            mark = "<strong>ESCALATED</strong> " if row.key in escalated else ""
            href = esc(link(base_url, row.link), quote=True)
            parts.append(
                f"<tr><td>{row.due_on.isoformat()}</td>"
                f'<td>{mark}<a href="{href}">{esc(row.what)}</a></td>'
                f"<td>{esc(row.rule or '')}</td></tr>"
            )
        parts.append("</table>")
    radar_href = esc(link(base_url, "radar"), quote=True)
    parts.append(f'<p><a href="{radar_href}">Open the radar</a></p></body></html>')
    return "\n".join(parts)


def message(
    frame: pd.DataFrame,
    as_of: date,
    *,
    sender: str,
    to: Iterable[str],
    cc: Iterable[str] = (),
    base_url: str = "",
    horizon_days: int = 14,
    escalated: Iterable[str] = (),
) -> EmailMessage:
    """The digest as an e-mail: plain text with an HTML alternative, red items first."""
    rows = ordered(frame)
    escalated = list(escalated)
    kwargs = {"base_url": base_url, "horizon_days": horizon_days, "escalated": escalated}
    email = EmailMessage()
    email["From"] = sender
    email["To"] = ", ".join(to)
    if cc:
        email["Cc"] = ", ".join(cc)
    email["Subject"] = subject_line(rows, as_of, escalated=len(escalated))
    email.set_content(text_body(rows, as_of, **kwargs))
    email.add_alternative(html_body(rows, as_of, **kwargs), subtype="html")
    return email


def send(smtp: Smtp, email: EmailMessage, *, password: str | None = None, timeout=30) -> None:
    """Send one message through `[smtp]`. Raises ValueError when SMTP is not configured,
    OSError or smtplib.SMTPException when the server refuses or cannot be reached."""
    if not smtp.configured:
        raise ValueError("SMTP is not configured: set [smtp] host and sender in config.toml")
    with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.username:
            client.login(smtp.username, password or "")
        client.send_message(email)
