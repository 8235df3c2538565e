"""Small builders for hand-made test rows: each inserts one row and returns its id.

Timestamps are naive UTC like the stored data; pass `oslo_noon(d)` to place an event on
the Oslo date `d` without worrying about midnight.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, time
from decimal import Decimal

from sqlalchemy import insert

from data_access import tables as t
from data_access.engines import Databases

_ids = itertools.count(1)


def oslo_noon(d: date) -> datetime:
    """11:00 UTC = 12:00/13:00 in Oslo: safely inside the Oslo date `d`."""
    return datetime.combine(d, time(11, 0))


def _insert(engine, table, values) -> int:
    with engine.begin() as conn:
        return conn.execute(insert(table).values(**values)).inserted_primary_key[0]


def add_account(
    dbs: Databases,
    *,
    email: str | None = None,
    full_name: str = "Kari Nordmann",
    created_on: date = date(2020, 1, 1),
    last_active_on: date | None = None,
    account_type: str = "personal",
    **extra,
) -> int:
    n = next(_ids)
    return _insert(
        dbs.users,
        t.accounts,
        {
            "email": email or f"user{n}@example.no",
            "full_name": full_name,
            "account_type": account_type,
            "created_at": oslo_noon(created_on),
            "last_active_at": oslo_noon(last_active_on) if last_active_on else None,
            **extra,
        },
    )


def add_member(
    dbs: Databases,
    account_id: int,
    *,
    email: str | None = None,
    full_name: str = "Ola Nordmann",
    last_active_on: date | None = None,
    role: str = "member",
) -> int:
    n = next(_ids)
    return _insert(
        dbs.users,
        t.account_members,
        {
            "account_id": account_id,
            "email": email or f"member{n}@example.no",
            "full_name": full_name,
            "role": role,
            "created_at": oslo_noon(date(2020, 1, 1)),
            "last_active_at": oslo_noon(last_active_on) if last_active_on else None,
        },
    )


def add_invoice(
    dbs: Databases,
    *,
    issued_on: date,
    account_id: int | None = None,
    customer_name: str = "Kari Nordmann",
    contact_person: str | None = None,
    amount: str = "499.00",
) -> int:
    n = next(_ids)
    return _insert(
        dbs.users,
        t.invoices,
        {
            "invoice_number": f"INV-{n:07d}",
            "account_id": account_id,
            "customer_name": customer_name,
            "contact_person": contact_person,
            "amount": Decimal(amount),
            "currency": "NOK",
            "issued_on": issued_on,
        },
    )


def add_usage_session(
    dbs: Databases, account_id: int, *, on: date, feature: str = "brew_log"
) -> int:
    return _insert(
        dbs.users,
        t.usage_sessions,
        {
            "account_id": account_id,
            "started_at": oslo_noon(on),
            "duration_s": 300,
            "feature": feature,
        },
    )


def add_contact(
    dbs: Databases,
    *,
    started_on: date | None = None,
    started_at: datetime | None = None,
    channel: str = "chat",
    email: str | None = None,
    full_name: str | None = "Kari Nordmann",
    phone: str | None = None,
    account_id: int | None = None,
    summary: str = "Spørsmål om Keg Management",
) -> int:
    return _insert(
        dbs.support,
        t.contacts,
        {
            "channel": channel,
            "started_at": started_at or oslo_noon(started_on),
            "full_name": full_name,
            "email": email,
            "phone": phone,
            "location": "Bergen",
            "account_id": account_id,
            "summary": summary,
        },
    )


def add_request(
    dbs: Databases,
    *,
    received_at: datetime | None = None,
    received_on: date | None = None,
    request_type: str = "access",
    subject_email: str = "kari@example.no",
    subject_name: str | None = "Kari Nordmann",
    account_id: int | None = None,
    channel: str = "email",
) -> int:
    return _insert(
        dbs.support,
        t.data_subject_requests,
        {
            "received_at": received_at or oslo_noon(received_on),
            "channel": channel,
            "request_type": request_type,
            "subject_email": subject_email,
            "subject_name": subject_name,
            "account_id": account_id,
            "details": None,
        },
    )


def add_consent_event(
    dbs: Databases,
    *,
    purpose: str,
    action: str,
    on: date | None = None,
    occurred_at: datetime | None = None,
    account_id: int | None = None,
    email: str | None = None,
    visitor_id: str | None = None,
    source: str = "app",
    notice_version: str | None = "v1",
) -> int:
    return _insert(
        dbs.consent,
        t.consent_events,
        {
            "account_id": account_id,
            "email": email,
            "visitor_id": visitor_id,
            "purpose": purpose,
            "action": action,
            "occurred_at": occurred_at or oslo_noon(on),
            "source": source,
            "notice_version": notice_version,
        },
    )


def add_subscriber(
    dbs: Databases, *, email: str, full_name: str | None = None, on: date = date(2025, 1, 1)
) -> int:
    return _insert(
        dbs.consent,
        t.newsletter_subscribers,
        {"email": email, "full_name": full_name, "subscribed_at": oslo_noon(on)},
    )
