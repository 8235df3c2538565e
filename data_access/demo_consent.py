"""Demo rows of the consent database: notice versions, consent events, newsletter list.

Consent events are append-only and their ids follow time (the roll-up watermark relies on
it, DESIGN.md "Consent watermark"), so they are generated month by month: the events of
accounts and subscribers that fall in the month, merged with that month's cookie-banner
choices of website visitors, sorted by time, then numbered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from data_access.demo_people import NOTICE_TEXTS, STR
from data_access.demo_plan import (
    APP_SETTINGS,
    BATCH_ROWS,
    COOKIE_BANNER,
    DAY,
    NONE,
    SIGNUP,
    SOURCES,
    AccountPlan,
    SubscriberPlan,
    daytime,
    stream,
    to_date64,
    to_datetime64,
)
from data_access.tables import CONSENT_PURPOSES

USAGE, NEWSLETTER, WEBSITE, MARKETING = range(4)
GRANTED, WITHDRAWN = 0, 1
ACTIONS = ("granted", "withdrawn")
ACCOUNT_VISITORS = 1 << 40  # visitor numbers of signed-in accounts start here
VISITOR_EVENTS_PER_CHOICE = 2.1  # two purposes per banner choice, plus later withdrawals


@dataclass(frozen=True)
class NoticeVersion:
    version: str
    purpose: int
    published_day: int
    text: str


def notice_versions(accounts: AccountPlan) -> list[NoticeVersion]:
    """Three published versions of each purpose's consent text (R21 counts by version)."""
    tl = accounts.tl
    days = (tl.start, tl.start + (tl.today - tl.start) * 45 // 100, tl.today - 200)
    out = []
    for purpose, name in enumerate(CONSENT_PURPOSES):
        for number, day in enumerate(days, start=1):
            text = f"{NOTICE_TEXTS[name]} (Versjon {number}, publisert {tl.date(day).isoformat()}.)"
            out.append(NoticeVersion(f"{name}-v{number}", purpose, day, text))
    return out


def notice_version_rows(versions: list[NoticeVersion]) -> dict:
    return {
        "version": np.array([v.version for v in versions], dtype=object),
        "purpose": np.array([CONSENT_PURPOSES[v.purpose] for v in versions], dtype=object),
        "published_on": to_date64(np.array([v.published_day for v in versions])),
        "text_sha256": np.array(
            [hashlib.sha256(v.text.encode("utf-8")).hexdigest() for v in versions], dtype=object
        ),
        "text": np.array([v.text for v in versions], dtype=object),
    }


def subscribers(subs: SubscriberPlan) -> Iterator[dict]:
    """`newsletter_subscribers`: 40 % account owners, some unsubscribed."""
    for low in range(0, subs.n, BATCH_ROWS):
        idx = np.arange(low, min(subs.n, low + BATCH_ROWS))
        yield {
            "id": subs.ids[idx],
            "email": subs.emails(idx),
            "full_name": subs.full_names(idx),
            "subscribed_at": to_datetime64(subs.subscribed_s[idx]),
            "unsubscribed_at": to_datetime64(subs.unsubscribed_s[idx]),
        }


class _Events:
    """Columns of consent events before numbering: who (account, subscriber or visitor
    number), what (purpose, action, source code) and when (seconds)."""

    FIELDS = ("t", "purpose", "action", "source", "account", "subscriber", "visitor")

    def __init__(self):
        self.parts: dict[str, list[np.ndarray]] = {f: [] for f in self.FIELDS}

    def add(self, t, purpose, action, source, *, account=None, subscriber=None, visitor=None):
        n = len(t)
        values = {
            "t": t,
            "purpose": purpose,
            "action": action,
            "source": source,
            "account": account,
            "subscriber": subscriber,
            "visitor": visitor,
        }
        for name, value in values.items():
            value = NONE if value is None else value
            self.parts[name].append(np.broadcast_to(np.asarray(value, dtype=np.int64), (n,)))

    def arrays(self) -> dict[str, np.ndarray]:
        return {f: np.concatenate(p) if p else np.zeros(0, np.int64) for f, p in self.parts.items()}


def _known_subject_events(accounts: AccountPlan, subs: SubscriberPlan) -> dict[str, np.ndarray]:
    """Every event of accounts and newsletter subscribers, sorted by time."""
    ev = _Events()
    idx = np.arange(accounts.n)
    for times, action, source in (
        (accounts.usage_grant_s, GRANTED, accounts.usage_grant_source),
        (accounts.usage_declined_s, WITHDRAWN, SIGNUP),
        (accounts.usage_withdraw_s, WITHDRAWN, accounts.usage_withdraw_source),
        (accounts.usage_regrant_s, GRANTED, APP_SETTINGS),
    ):
        has = times != NONE
        src = source[has] if isinstance(source, np.ndarray) else source
        ev.add(times[has], USAGE, action, src, account=idx[has])
    # Signed-in website visitors: the banner choice carries the account and its visitor id.
    web = accounts.web_s != NONE
    choice = accounts.web_choice[web]
    visitor = ACCOUNT_VISITORS + idx[web]
    ev.add(
        accounts.web_s[web],
        WEBSITE,
        np.where(choice == 1, WITHDRAWN, GRANTED),
        COOKIE_BANNER,
        account=idx[web],
        visitor=visitor,
    )
    ev.add(
        accounts.web_s[web] + 1,
        MARKETING,
        np.where(choice == 0, GRANTED, WITHDRAWN),
        COOKIE_BANNER,
        account=idx[web],
        visitor=visitor,
    )
    later = accounts.web_withdraw_s != NONE
    ev.add(
        accounts.web_withdraw_s[later],
        WEBSITE,
        WITHDRAWN,
        COOKIE_BANNER,
        account=idx[later],
        visitor=ACCOUNT_VISITORS + idx[later],
    )
    both = later & (accounts.web_choice == 0)
    ev.add(
        accounts.web_withdraw_s[both] + 1,
        MARKETING,
        WITHDRAWN,
        COOKIE_BANNER,
        account=idx[both],
        visitor=ACCOUNT_VISITORS + idx[both],
    )
    # Newsletter: consent keyed by e-mail; some subscribers lack it (R22 findings).
    s = np.arange(subs.n)
    grants = ~subs.no_consent & ~subs.only_withdrawn
    ev.add(
        subs.subscribed_s[grants],
        NEWSLETTER,
        GRANTED,
        subs.grant_source[grants],
        subscriber=s[grants],
    )
    left = subs.unsubscribed_s != NONE
    ev.add(
        subs.unsubscribed_s[left],
        NEWSLETTER,
        WITHDRAWN,
        subs.withdraw_source[left],
        subscriber=s[left],
    )
    odd = subs.only_withdrawn
    ev.add(
        subs.subscribed_s[odd] + 3 * DAY,
        NEWSLETTER,
        WITHDRAWN,
        subs.withdraw_source[odd],
        subscriber=s[odd],
    )
    arrays = ev.arrays()
    order = np.argsort(arrays["t"], kind="stable")
    return {k: v[order] for k, v in arrays.items()}


def visitor_ids(numbers: np.ndarray, seed: int) -> np.ndarray:
    """Opaque 16-hex-digit visitor ids: a bijective scramble of the visitor number."""
    x = numbers.astype(np.uint64) + np.uint64(seed & 0xFFFF)
    x = x * np.uint64(0x9E3779B97F4A7C15)
    x ^= x >> np.uint64(29)
    text = x.astype(">u8").tobytes().hex()
    return np.frombuffer(text.encode("ascii"), dtype="S16").astype(STR)


def consent_events(
    accounts: AccountPlan, subs: SubscriberPlan, target: int, seed: int
) -> Iterator[dict]:
    """`consent_events` for all four purposes, ids in time order (R20, R21, R22)."""
    tl = accounts.tl
    known = _known_subject_events(accounts, subs)
    choices = max(0, round((target - len(known["t"])) / VISITOR_EVENTS_PER_CHOICE))
    versions = notice_versions(accounts)
    months = tl.months()
    span = tl.today - tl.start

    def share(day: int) -> float:
        """Share of all banner choices made before `day`: website traffic grows."""
        return ((day - tl.start) / span) ** 2.2

    pending = {f: np.zeros(0, np.int64) for f in ("t", "purpose", "visitor")}
    next_id, next_visitor = 1, 0
    for number, (start, end) in enumerate(months):
        r = stream(seed, "visitors", number)
        count = round(choices * share(end)) - round(choices * share(start))
        visitors, withdrawals = _banner_choices(r, start, end, count, next_visitor, tl.last)
        next_visitor += count
        for f in pending:
            pending[f] = np.concatenate([pending[f], withdrawals[f]])
        due = pending["t"] < end * DAY
        lo, hi = np.searchsorted(known["t"], [start * DAY, end * DAY])
        month = _merge(
            {k: v[lo:hi] for k, v in known.items()},
            visitors,
            _visitor_events(
                pending["t"][due], pending["purpose"][due], WITHDRAWN, pending["visitor"][due]
            ),
        )
        pending = {f: v[~due] for f, v in pending.items()}
        n = len(month["t"])
        for low in range(0, n, BATCH_ROWS):
            part = {k: v[low : low + BATCH_ROWS] for k, v in month.items()}
            rows = _rows(part, accounts, subs, versions, seed, next_id)
            next_id += len(part["t"])
            yield rows


def _banner_choices(r, start: int, end: int, count: int, first_visitor: int, last_day: int):
    """One month of anonymous visitors' cookie-banner choices: accept all (60 %), reject
    all (25 %) or statistics only (15 %); 8 % of those who accepted withdraw later."""
    numbers = np.arange(first_visitor, first_visitor + count, dtype=np.int64)
    day = start + (r.random(count) * (end - start)).astype(np.int64)
    t = day * DAY + daytime(r, count)
    choice = r.choice(3, count, p=[0.6, 0.25, 0.15])
    events = _merge(
        _visitor_events(t, WEBSITE, np.where(choice == 1, WITHDRAWN, GRANTED), numbers),
        _visitor_events(t + 1, MARKETING, np.where(choice == 0, GRANTED, WITHDRAWN), numbers),
    )
    later_day = day + 1 + r.exponential(60, count).astype(np.int64)
    later = (choice != 1) & (r.random(count) < 0.08) & (later_day <= last_day)
    wt = later_day * DAY + daytime(r, count)
    both = later & (choice == 0)
    withdrawals = {
        "t": np.concatenate([wt[later], wt[both] + 1]),
        "purpose": np.concatenate(
            [np.full(int(later.sum()), WEBSITE), np.full(int(both.sum()), MARKETING)]
        ).astype(np.int64),
        "visitor": np.concatenate([numbers[later], numbers[both]]),
    }
    return events, withdrawals


def _visitor_events(t, purpose, action, visitor) -> dict[str, np.ndarray]:
    ev = _Events()
    ev.add(t, purpose, action, COOKIE_BANNER, visitor=visitor)
    return ev.arrays()


def _merge(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Concatenate event columns and sort by time (ties keep their order)."""
    merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(merged["t"], kind="stable")
    return {k: v[order] for k, v in merged.items()}


def _rows(
    part: dict[str, np.ndarray],
    accounts: AccountPlan,
    subs: SubscriberPlan,
    versions: list[NoticeVersion],
    seed: int,
    first_id: int,
) -> dict:
    n = len(part["t"])
    account = part["account"]
    has_account = account != NONE
    account_id = np.full(n, None, dtype=object)
    account_id[has_account] = accounts.ids[account[has_account]]
    subscriber = part["subscriber"]
    has_email = subscriber != NONE
    email = np.full(n, None, dtype=object)
    if has_email.any():
        s = subscriber[has_email]
        lower = np.strings.lower(subs.emails(s))
        email[has_email] = np.where(
            subs.event_mixed_case[s], np.strings.title(lower), lower
        ).astype(object)
    has_visitor = part["visitor"] != NONE
    visitor = np.full(n, None, dtype=object)
    visitor[has_visitor] = visitor_ids(part["visitor"][has_visitor], seed).astype(object)
    return {
        "id": np.arange(first_id, first_id + n),
        "account_id": account_id,
        "email": email,
        "visitor_id": visitor,
        "purpose": np.array(CONSENT_PURPOSES, dtype=object)[part["purpose"]],
        "action": np.array(ACTIONS, dtype=object)[part["action"]],
        "occurred_at": to_datetime64(part["t"]),
        "source": np.array(SOURCES, dtype=object)[part["source"]],
        "notice_version": _version_names(part["purpose"], part["t"] // DAY, versions),
    }


def _version_names(purpose: np.ndarray, day: np.ndarray, versions: list[NoticeVersion]):
    """The version of each purpose's text in force on the event's day."""
    out = np.full(len(day), None, dtype=object)
    for p in range(len(CONSENT_PURPOSES)):
        mine = [v for v in versions if v.purpose == p]
        published = np.array([v.published_day for v in mine])
        names = np.array([v.version for v in mine], dtype=object)
        sel = purpose == p
        position = np.searchsorted(published, day[sel], side="right") - 1
        out[sel] = names[np.maximum(position, 0)]
    return out
