"""Consent state, rates, trends and processing without consent (RULES.md R20-R22), on
SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest
from sqlalchemy import update

from data_access import consent
from data_access.tables import CONSENT_PURPOSES, newsletter_subscribers
from tests.factories import (
    add_account,
    add_consent_event,
    add_subscriber,
    add_usage_session,
)

STATS = "usage_statistics"


def rate_row(frame, purpose: str) -> dict:
    rows = frame[frame["purpose"] == purpose].to_dict("records")
    assert len(rows) == 1
    return rows[0]


def records(frame) -> list[dict]:
    """Rows as dicts with missing values as None (pandas keeps them as NaN)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def counts(frame, purpose: str) -> tuple[int, int, int]:
    row = rate_row(frame, purpose)
    return row["subjects"], row["granted"], row["withdrawn"]


def test_r20_subject_is_account_then_lowercased_email_then_visitor(empty_dbs):
    on = date(2026, 5, 1)
    # Account 7: its e-mail does not make a second subject, the account key comes first.
    add_consent_event(empty_dbs, purpose=STATS, action="granted", on=on, account_id=7)
    add_consent_event(
        empty_dbs,
        purpose=STATS,
        action="withdrawn",
        on=date(2026, 5, 2),
        account_id=7,
        email="kari@example.no",
    )
    # The same e-mail without an account is another subject; case does not matter.
    add_consent_event(empty_dbs, purpose=STATS, action="withdrawn", on=on, email="Kari@Example.NO")
    add_consent_event(
        empty_dbs, purpose=STATS, action="granted", on=date(2026, 5, 3), email="kari@example.no"
    )
    # A visitor id counts only without account and e-mail.
    add_consent_event(empty_dbs, purpose=STATS, action="granted", on=on, visitor_id="v-1")
    add_consent_event(
        empty_dbs, purpose=STATS, action="withdrawn", on=on, visitor_id="v-1", email="ola@x.no"
    )

    frame = consent.consent_rates(empty_dbs, date(2026, 5, 31))

    # Subjects: account:7 (withdrawn), email:kari@example.no (granted), visitor:v-1
    # (granted), email:ola@x.no (withdrawn).
    assert counts(frame, STATS) == (4, 2, 2)
    assert rate_row(frame, STATS)["rate"] == pytest.approx(0.5)


def test_r20_same_time_the_higher_id_wins(empty_dbs):
    at = datetime(2026, 5, 1, 9, 0)
    add_consent_event(
        empty_dbs, purpose="newsletter", action="granted", occurred_at=at, account_id=1
    )
    add_consent_event(
        empty_dbs, purpose="newsletter", action="withdrawn", occurred_at=at, account_id=1
    )
    add_consent_event(
        empty_dbs, purpose="newsletter", action="withdrawn", occurred_at=at, account_id=2
    )
    add_consent_event(
        empty_dbs, purpose="newsletter", action="granted", occurred_at=at, account_id=2
    )
    # A later time wins over a higher id with an earlier time.
    add_consent_event(
        empty_dbs,
        purpose="newsletter",
        action="granted",
        occurred_at=datetime(2026, 5, 2, 9, 0),
        account_id=3,
    )
    add_consent_event(
        empty_dbs, purpose="newsletter", action="withdrawn", occurred_at=at, account_id=3
    )

    frame = consent.consent_rates(empty_dbs, date(2026, 5, 2))

    # account 1 withdrawn, account 2 granted, account 3 granted (latest time).
    assert counts(frame, "newsletter") == (3, 2, 1)
    assert rate_row(frame, "newsletter")["rate"] == pytest.approx(2 / 3)


def test_r20_an_event_late_in_the_utc_evening_belongs_to_the_next_oslo_date(empty_dbs):
    # 2026-06-30 23:30 UTC is 2026-07-01 01:30 in Oslo (summer time).
    add_consent_event(
        empty_dbs,
        purpose="marketing",
        action="granted",
        occurred_at=datetime(2026, 6, 30, 23, 30),
        visitor_id="v-9",
    )
    add_consent_event(
        empty_dbs,
        purpose="marketing",
        action="withdrawn",
        occurred_at=datetime(2026, 6, 30, 21, 59),  # 23:59 in Oslo: still June
        visitor_id="v-8",
    )

    june = consent.consent_rates(empty_dbs, date(2026, 6, 30))
    july = consent.consent_rates(empty_dbs, date(2026, 7, 1))

    assert counts(june, "marketing") == (1, 0, 1)
    assert rate_row(june, "marketing")["rate"] == 0.0
    assert counts(july, "marketing") == (2, 1, 1)
    trend = consent.consent_trend(empty_dbs, date(2026, 6, 1), date(2026, 7, 31))
    marketing = trend[trend["purpose"] == "marketing"]
    assert list(marketing["month"]) == [date(2026, 6, 1), date(2026, 7, 1)]
    assert list(marketing["granted_events"]) == [0, 1]
    assert list(marketing["withdrawn_events"]) == [1, 0]


def test_r21_every_purpose_has_a_row_and_no_subjects_means_no_rate(empty_dbs):
    add_consent_event(
        empty_dbs, purpose="newsletter", action="granted", on=date(2026, 5, 1), email="a@x.no"
    )
    # An event after as_of does not count yet.
    add_consent_event(empty_dbs, purpose=STATS, action="granted", on=date(2026, 5, 2), account_id=1)

    frame = consent.consent_rates(empty_dbs, date(2026, 5, 1))

    assert list(frame["purpose"]) == list(CONSENT_PURPOSES)
    assert list(frame.columns) == consent.RATE_COLUMNS
    assert counts(frame, "newsletter") == (1, 1, 0)
    assert rate_row(frame, "newsletter")["rate"] == 1.0
    for purpose in (STATS, "website_statistics", "marketing"):
        assert counts(frame, purpose) == (0, 0, 0)
        assert math.isnan(rate_row(frame, purpose)["rate"])


def test_r21_trend_counts_events_per_month_and_the_rate_at_each_month_end(empty_dbs):
    add_consent_event(
        empty_dbs, purpose=STATS, action="granted", on=date(2026, 1, 20), account_id=1
    )
    add_consent_event(
        empty_dbs, purpose=STATS, action="granted", on=date(2026, 1, 31), account_id=2
    )
    add_consent_event(
        empty_dbs, purpose=STATS, action="granted", on=date(2026, 2, 10), account_id=3
    )
    add_consent_event(
        empty_dbs, purpose=STATS, action="withdrawn", on=date(2026, 2, 28), account_id=1
    )
    add_consent_event(
        empty_dbs, purpose=STATS, action="withdrawn", on=date(2026, 3, 20), account_id=2
    )  # after `end`
    add_consent_event(empty_dbs, purpose=STATS, action="granted", on=date(2026, 3, 5), account_id=4)

    trend = consent.consent_trend(empty_dbs, date(2026, 1, 25), date(2026, 3, 10))

    assert list(trend.columns) == consent.TREND_COLUMNS
    assert len(trend) == 3 * len(CONSENT_PURPOSES)
    stats = trend[trend["purpose"] == STATS].to_dict("records")
    assert [r["month"] for r in stats] == [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    # January counts only from `start` (01-25): account 2's grant, not account 1's.
    assert [r["granted_events"] for r in stats] == [1, 1, 1]
    assert [r["withdrawn_events"] for r in stats] == [0, 1, 0]
    # Jan 31: 2 of 2 granted; Feb 28: 2 of 3; as of `end` 03-10: 3 of 4.
    assert [r["rate_at_month_end"] for r in stats] == pytest.approx([1.0, 2 / 3, 3 / 4])
    newsletter = trend[trend["purpose"] == "newsletter"]
    assert list(newsletter["granted_events"]) == [0, 0, 0]
    assert newsletter["rate_at_month_end"].isna().all()
    single = consent.consent_trend(empty_dbs, date(2026, 2, 1), date(2026, 2, 27))
    assert list(single[single["purpose"] == STATS]["granted_events"]) == [1]
    assert list(single[single["purpose"] == STATS]["withdrawn_events"]) == [0]
    with pytest.raises(ValueError):
        consent.consent_trend(empty_dbs, date(2026, 3, 1), date(2026, 2, 1))


def test_r21_trend_follows_subjects_that_change_their_mind(empty_dbs):
    for account_id, action, on in [
        (5, "granted", date(2026, 1, 10)),
        (5, "withdrawn", date(2026, 2, 3)),
        (5, "granted", date(2026, 2, 5)),
        (5, "withdrawn", date(2026, 3, 1)),
        (6, "granted", date(2026, 2, 3)),
        (6, "withdrawn", date(2026, 2, 4)),
        (7, "withdrawn", date(2026, 1, 5)),
        (7, "granted", date(2026, 3, 2)),
    ]:
        add_consent_event(empty_dbs, purpose=STATS, action=action, on=on, account_id=account_id)

    trend = consent.consent_trend(empty_dbs, date(2026, 1, 1), date(2026, 3, 31))

    stats = trend[trend["purpose"] == STATS]
    assert list(stats["granted_events"]) == [1, 2, 1]
    assert list(stats["withdrawn_events"]) == [1, 2, 1]
    # Jan 31: 5 granted, 7 withdrawn; Feb 28: only 5 granted of 3; Mar 31: only 7 of 3.
    assert list(stats["rate_at_month_end"]) == pytest.approx([1 / 2, 1 / 3, 1 / 3])
    for month_end, rate in zip(
        [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)],
        stats["rate_at_month_end"],
        strict=True,
    ):
        assert rate_row(consent.consent_rates(empty_dbs, month_end), STATS)["rate"] == rate
    assert counts(consent.consent_rates(empty_dbs, date(2026, 3, 31)), STATS) == (3, 1, 2)


def test_r21_breakdown_by_source_and_notice_version(empty_dbs):
    on = date(2026, 4, 1)
    add_consent_event(empty_dbs, purpose=STATS, action="granted", on=on, account_id=1, source="app")
    add_consent_event(
        empty_dbs, purpose=STATS, action="withdrawn", on=on, account_id=1, source="app"
    )
    add_consent_event(
        empty_dbs,
        purpose=STATS,
        action="granted",
        on=on,
        account_id=2,
        source=None,
        notice_version="v2",
    )
    add_consent_event(
        empty_dbs, purpose="marketing", action="granted", on=on, visitor_id="v", source="web"
    )
    add_consent_event(  # after as_of
        empty_dbs, purpose=STATS, action="granted", on=date(2026, 4, 3), account_id=3
    )

    by_source = consent.breakdown(empty_dbs, date(2026, 4, 2), by="source")
    by_version = consent.breakdown(empty_dbs, date(2026, 4, 2), by="notice_version")

    assert records(by_source) == [
        {"purpose": "marketing", "source": "web", "granted_events": 1, "withdrawn_events": 0},
        {"purpose": STATS, "source": None, "granted_events": 1, "withdrawn_events": 0},
        {"purpose": STATS, "source": "app", "granted_events": 1, "withdrawn_events": 1},
    ]
    assert records(by_version) == [
        {
            "purpose": "marketing",
            "notice_version": "v1",
            "granted_events": 1,
            "withdrawn_events": 0,
        },
        {"purpose": STATS, "notice_version": "v1", "granted_events": 1, "withdrawn_events": 1},
        {"purpose": STATS, "notice_version": "v2", "granted_events": 1, "withdrawn_events": 0},
    ]
    with pytest.raises(ValueError, match="by"):
        consent.breakdown(empty_dbs, date(2026, 4, 2), by="purpose")


def test_r21_withdrawals_in_a_period_by_source_and_notice_version(empty_dbs):
    for day, source, version in [
        (1, "app", "v1"),
        (2, "app", "v1"),
        (3, "web", "v2"),
        (4, "app", None),
    ]:
        add_consent_event(
            empty_dbs,
            purpose="newsletter",
            action="withdrawn",
            on=date(2026, 4, day),
            email=f"p{day}@x.no",
            source=source,
            notice_version=version,
        )
    add_consent_event(
        empty_dbs, purpose="newsletter", action="granted", on=date(2026, 4, 2), email="g@x.no"
    )
    add_consent_event(  # before the period
        empty_dbs, purpose="newsletter", action="withdrawn", on=date(2026, 3, 31), email="o@x.no"
    )

    frame = consent.withdrawals(empty_dbs, date(2026, 4, 1), date(2026, 4, 4))

    assert records(frame) == [
        {"purpose": "newsletter", "source": "app", "notice_version": None, "withdrawals": 1},
        {"purpose": "newsletter", "source": "app", "notice_version": "v1", "withdrawals": 2},
        {"purpose": "newsletter", "source": "web", "notice_version": "v2", "withdrawals": 1},
    ]
    assert consent.withdrawals(empty_dbs, date(2026, 4, 5), date(2026, 4, 30)).empty


def test_r22_usage_sessions_without_a_granted_state_at_the_time(empty_dbs):
    never = add_account(empty_dbs, email="never@x.no")
    changing = add_account(empty_dbs, email="changing@x.no")
    before_consent = add_usage_session(empty_dbs, never, on=date(2026, 3, 1))
    add_consent_event(
        empty_dbs, purpose=STATS, action="granted", on=date(2026, 3, 10), account_id=changing
    )
    add_consent_event(
        empty_dbs, purpose=STATS, action="withdrawn", on=date(2026, 3, 20), account_id=changing
    )
    # An e-mail-keyed grant is another subject: it does not cover the account (R20).
    add_consent_event(
        empty_dbs, purpose=STATS, action="granted", on=date(2026, 3, 1), email="changing@x.no"
    )
    early = add_usage_session(empty_dbs, changing, on=date(2026, 3, 5), feature="brew_log")
    same_instant = add_usage_session(empty_dbs, changing, on=date(2026, 3, 10))  # 11:00 both
    add_usage_session(empty_dbs, changing, on=date(2026, 3, 15))
    after = add_usage_session(empty_dbs, changing, on=date(2026, 3, 25), feature="keg")
    add_usage_session(empty_dbs, never, on=date(2026, 4, 2))  # after as_of

    found = consent.processing_without_consent(empty_dbs, date(2026, 4, 1))

    sessions = found["usage_sessions"]
    assert list(sessions.columns) == consent.SESSION_COLUMNS
    assert sessions[["session_id", "account_id", "state_at_time"]].to_dict("records") == [
        {"session_id": after, "account_id": changing, "state_at_time": "withdrawn"},
        {"session_id": early, "account_id": changing, "state_at_time": "none"},
        {"session_id": before_consent, "account_id": never, "state_at_time": "none"},
    ]
    assert same_instant not in set(sessions["session_id"])
    assert sessions.iloc[0]["feature"] == "keg"
    assert sessions.iloc[0]["started_at"] == datetime(2026, 3, 25, 11, 0)
    assert sessions.attrs == {"total": 3, "truncated": False}
    capped = consent.processing_without_consent(empty_dbs, date(2026, 4, 1), limit=1)
    assert list(capped["usage_sessions"]["session_id"]) == [after]
    assert capped["usage_sessions"].attrs == {"total": 3, "truncated": True}


def test_r22_ties_regrants_and_a_session_at_the_withdrawal_instant(empty_dbs):
    dbs = empty_dbs
    tied = add_account(dbs, email="tied@x.no")
    regranted = add_account(dbs, email="regranted@x.no")
    # Granted and withdrawn at the same instant: the higher id (the withdrawal) counts (R20).
    for action in ("granted", "withdrawn"):
        add_consent_event(dbs, purpose=STATS, action=action, on=date(2026, 3, 2), account_id=tied)
    at_tie = add_usage_session(dbs, tied, on=date(2026, 3, 2))
    # Granted, withdrawn, granted again; sessions in each period and at the withdrawal.
    for day, action in ((1, "granted"), (10, "withdrawn"), (20, "granted")):
        add_consent_event(
            dbs, purpose=STATS, action=action, on=date(2026, 3, day), account_id=regranted
        )
    add_usage_session(dbs, regranted, on=date(2026, 3, 5))
    at_withdrawal = add_usage_session(dbs, regranted, on=date(2026, 3, 10))  # same instant
    while_withdrawn = add_usage_session(dbs, regranted, on=date(2026, 3, 15))
    add_usage_session(dbs, regranted, on=date(2026, 3, 20))  # the grant at the same instant
    add_usage_session(dbs, regranted, on=date(2026, 3, 25))

    sessions = consent.processing_without_consent(dbs, date(2026, 4, 1))["usage_sessions"]

    assert sessions[["session_id", "state_at_time"]].to_dict("records") == [
        {"session_id": while_withdrawn, "state_at_time": "withdrawn"},
        {"session_id": at_withdrawal, "state_at_time": "withdrawn"},
        {"session_id": at_tie, "state_at_time": "withdrawn"},
    ]
    counts = consent.processing_without_consent_counts(dbs, date(2026, 4, 1))
    assert counts["usage_sessions"] == 3


def test_r22_newsletter_subscribers_without_a_granted_state(empty_dbs):
    never = add_subscriber(empty_dbs, email="never@x.no", on=date(2026, 1, 1))
    granted = add_subscriber(empty_dbs, email="Granted@X.no", on=date(2026, 1, 1))
    add_consent_event(
        empty_dbs, purpose="newsletter", action="granted", on=date(2026, 1, 1), email="granted@x.no"
    )
    withdrew = add_subscriber(empty_dbs, email="withdrew@x.no", on=date(2026, 1, 1))
    add_consent_event(
        empty_dbs,
        purpose="newsletter",
        action="granted",
        on=date(2026, 1, 1),
        email="withdrew@x.no",
    )
    add_consent_event(
        empty_dbs,
        purpose="newsletter",
        action="withdrawn",
        on=date(2026, 2, 1),
        email="withdrew@x.no",
    )
    left = add_subscriber(empty_dbs, email="left@x.no", on=date(2026, 1, 1))
    with empty_dbs.consent.begin() as conn:
        conn.execute(
            update(newsletter_subscribers)
            .where(newsletter_subscribers.c.id == left)
            .values(unsubscribed_at=datetime(2026, 2, 1, 12, 0))
        )
    other_purpose = add_subscriber(empty_dbs, email="stats@x.no", on=date(2026, 1, 1))
    add_consent_event(
        empty_dbs, purpose=STATS, action="granted", on=date(2026, 1, 1), email="stats@x.no"
    )
    add_subscriber(empty_dbs, email="future@x.no", on=date(2026, 4, 1))

    found = consent.processing_without_consent(empty_dbs, date(2026, 3, 1))

    subscribers = found["newsletter_subscribers"]
    assert list(subscribers.columns) == consent.SUBSCRIBER_COLUMNS
    assert subscribers[["subscriber_id", "email", "state"]].to_dict("records") == [
        {"subscriber_id": never, "email": "never@x.no", "state": "none"},
        {"subscriber_id": withdrew, "email": "withdrew@x.no", "state": "withdrawn"},
        {"subscriber_id": other_purpose, "email": "stats@x.no", "state": "none"},
    ]
    assert granted not in set(subscribers["subscriber_id"])
    assert subscribers.iloc[0]["subscribed_at"] == datetime(2026, 1, 1, 11, 0)
    assert subscribers.attrs == {"total": 3, "truncated": False}
    # Before the withdrawal the grant still held.
    january = consent.processing_without_consent(empty_dbs, date(2026, 1, 15))
    assert list(january["newsletter_subscribers"]["subscriber_id"]) == [never, left, other_purpose]
    assert consent.processing_without_consent_counts(empty_dbs, date(2026, 3, 1)) == {
        "usage_sessions": 0,
        "newsletter_subscribers": 3,
    }
