"""The outbox sender against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import socket

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert, select

from data_access import mailer
from data_access.clock import utc_now
from data_access.ledger_tables import outbox
from data_access.settings import Smtp


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _queue(dbs, to_email: str, subject: str = "Kontoen din slettes 2026-12-29") -> int:
    with dbs.ledger.begin() as conn:
        return conn.execute(
            insert(outbox).values(
                created_at=utc_now(),
                kind="inactivity_notice",
                to_email=to_email,
                subject_ref="x" * 64,
                subject=subject,
                body="Hei Åse,\nkontoen din slettes.",
                status="pending",
                attempts=0,
            )
        ).inserted_primary_key[0]


def _row(dbs, outbox_id):
    with dbs.ledger.connect() as conn:
        return conn.execute(select(outbox).where(outbox.c.id == outbox_id)).mappings().one()


def test_pending_messages_are_delivered_and_marked_sent(sqlite_dbs, smtp_server):
    controller, inbox = smtp_server
    first = _queue(sqlite_dbs, "åse@example.no")
    second = _queue(sqlite_dbs, "ola@example.no")
    smtp = Smtp(host="127.0.0.1", port=controller.port, sender="privacy@plaato.example")

    result = mailer.deliver_outbox(sqlite_dbs, smtp)

    assert (result.sent, result.failed) == (2, 0)
    assert [m.rcpt_tos for m in inbox.messages] == [["åse@example.no"], ["ola@example.no"]]
    assert "Kontoen din slettes 2026-12-29" in inbox.messages[0].content.decode("utf-8", "replace")
    assert _row(sqlite_dbs, first)["status"] == "sent"
    assert _row(sqlite_dbs, second)["sent_at"] is not None
    # A second run sends nothing again.
    assert mailer.deliver_outbox(sqlite_dbs, smtp).sent == 0
    assert len(inbox.messages) == 2


def test_unreachable_server_records_the_error_and_keeps_the_message(sqlite_dbs):
    queued = _queue(sqlite_dbs, "kari@example.no")
    smtp = Smtp(host="127.0.0.1", port=_free_port(), sender="privacy@plaato.example")

    result = mailer.deliver_outbox(sqlite_dbs, smtp, timeout=2)

    row = _row(sqlite_dbs, queued)
    assert result.failed == 1
    assert row["status"] == "pending" and row["attempts"] == 1
    assert "cannot connect to 127.0.0.1" in row["last_error"]


def test_unconfigured_smtp_is_refused(sqlite_dbs):
    with pytest.raises(ValueError, match=r"\[smtp\] host and sender"):
        mailer.deliver_outbox(sqlite_dbs, Smtp())
