"""Delivers the ledger's outbox over SMTP when `[smtp]` is configured in config.toml.

Messages are written to the outbox by actions (notices); this sender delivers pending
ones and records, per message, delivery or the error. A message is tried at most
`MAX_ATTEMPTS` times, then left *failed* for the DPO to see.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

import pandas as pd
from sqlalchemy import func, select, update

from data_access import stores
from data_access.clock import utc_now
from data_access.engines import Databases
from data_access.frames import read_frame
from data_access.ledger_tables import outbox
from data_access.settings import Smtp
from data_access.stores import writes

MAX_ATTEMPTS = 5
STATUSES = ("pending", "sent", "failed")


@dataclass
class Delivery:
    sent: int
    failed: int
    errors: dict[int, str]  # outbox id -> error


@writes(*stores.OUTBOX, *stores.AUDIT)
def deliver_outbox(
    dbs: Databases,
    smtp: Smtp,
    *,
    password: str | None = None,
    limit: int = 500,
    timeout: float = 30,
) -> Delivery:
    """Send up to `limit` pending messages, oldest first, over one SMTP connection.

    Each message is marked *sent* (with the UTC time) or keeps *pending* with the error and
    one more attempt counted (*failed* after MAX_ATTEMPTS). A connection that cannot be
    opened fails every message of this run with that error. Raises ValueError when SMTP
    is not configured.
    """
    if not smtp.configured:
        raise ValueError("SMTP is not configured: set [smtp] host and sender in config.toml")
    pending = _pending(dbs, limit)
    result = Delivery(0, 0, {})
    if not pending:
        return result
    try:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
    except OSError as exc:
        for message in pending:
            _record_failure(
                dbs, message, f"cannot connect to {smtp.host}:{smtp.port}: {exc}", result
            )
        return result
    with client:
        if smtp.starttls:
            client.starttls()
        if smtp.username:
            client.login(smtp.username, password or "")
        for message in pending:
            try:
                client.send_message(_email(message, smtp.sender))
            except smtplib.SMTPException as exc:
                _record_failure(dbs, message, f"{exc.__class__.__name__}: {exc}", result)
                continue
            _record_sent(dbs, message["id"])
            result.sent += 1
    return result


def _pending(dbs: Databases, limit: int) -> list[dict]:
    query = select(outbox).where(outbox.c.status == "pending").order_by(outbox.c.id).limit(limit)
    with dbs.ledger.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def _email(message: dict, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message["to_email"]
    email["Subject"] = message["subject"]
    email.set_content(message["body"])
    return email


def _record_sent(dbs: Databases, outbox_id: int) -> None:
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == outbox_id, outbox.c.status == "pending")
            .values(
                status="sent", sent_at=utc_now(), attempts=outbox.c.attempts + 1, last_error=None
            )
        )


def _record_failure(dbs: Databases, message: dict, error: str, result: Delivery) -> None:
    attempts = (message["attempts"] or 0) + 1
    status = "failed" if attempts >= MAX_ATTEMPTS else "pending"
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(outbox)
            .where(outbox.c.id == message["id"])
            .values(status=status, attempts=attempts, last_error=error[:2000])
        )
    result.failed += 1
    result.errors[message["id"]] = error


def outbox_messages(
    dbs: Databases, *, status: str | None = None, limit: int | None = None
) -> pd.DataFrame:
    """Outbox messages newest first. Columns: id, created_at (UTC), kind, to_email, subject,
    status, attempts, last_error, sent_at (UTC). Capped at `limit` (policy.max_rows)."""
    query = select(
        outbox.c.id,
        outbox.c.created_at,
        outbox.c.kind,
        outbox.c.to_email,
        outbox.c.subject,
        outbox.c.status,
        outbox.c.attempts,
        outbox.c.last_error,
        outbox.c.sent_at,
    ).order_by(outbox.c.id.desc())
    if status:
        query = query.where(outbox.c.status == status)
    query = query.limit(limit or dbs.policy.max_rows)
    return read_frame(dbs.ledger, query)


def outbox_counts(dbs: Databases) -> dict[str, int]:
    """How many outbox messages are pending, sent and failed: every status present, 0 when
    none (the Accounts page's outbox figures)."""
    query = (
        select(outbox.c.status, func.count()).group_by(outbox.c.status).order_by(outbox.c.status)
    )
    with dbs.ledger.connect() as conn:
        found = dict(conn.execute(query).all())
    return {status: int(found.get(status, 0)) for status in STATUSES}
