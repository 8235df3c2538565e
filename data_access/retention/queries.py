"""Retention read functions: accounts nearing deletion, support logs and invoices past their
retention (RULES.md R13, R15, R16; privacy policy "Inactive accounts will be deleted
(following notification) after being inactive for 12 months").

Every cut-off is computed in Python as a date, turned into the UTC bound of an Oslo day
(`clock.day_start_utc` / `day_end_utc`) and compared with an indexed column, so the same
query runs on SQLite, PostgreSQL and MariaDB. The ledger's notices and legal holds are
joined in Python on the keys of the rows the source query returned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, or_, select

from data_access import holds, rules, sql_time
from data_access.clock import OSLO, day_end_utc, oslo_date, oslo_dates, utc_naive_series
from data_access.emails import email_condition
from data_access.engines import Databases
from data_access.ledger_tables import notices
from data_access.retention import activity
from data_access.tables import CHANNELS, account_members, accounts, contacts, invoices

STAGES = ("upcoming", "notice_due", "notified", "ready", "on_hold")
ACCOUNT_COLUMNS = [
    "account_id",
    "email",
    "full_name",
    "account_type",
    "last_activity_on",
    "last_activity_by",
    "eligible_on",
    "notice_sent_on",
    "notice_voided",
    "deletable_on",
    "key_date",
    "stage",
    "on_hold",
    "hold_ids",
]
CONTACT_COLUMNS = [
    "contact_id",
    "channel",
    "started_at",
    "started_on",
    "retained_until",
    "account_id",
    "on_hold",
    "hold_ids",
]
INVOICE_COLUMNS = [
    "invoice_id",
    "invoice_number",
    "issued_on",
    "retained_until",
    "account_id",
    "on_hold",
    "hold_ids",
]
_CHUNK = 500  # keys per IN list: far below every backend's bound-parameter limit
_STREAM_ROWS = 20_000
# Ids per IN list where tens of thousands are looked up (accounts with a notice): fewer,
# larger statements, still below SQLite's 32,766 and the servers' 65,535 parameters.
_ID_CHUNK = 5_000
_WALK_ROWS = 1_000  # fewest accounts per page of the activity walk


# --- date cut-offs -------------------------------------------------------------------------


def latest_start_within(last_day: date, months: int) -> date:
    """The latest day d with `add_months(d, months) <= last_day` (add_months inverted).

    add_months clamps to the month's end, so several days can map to the same date:
    with months=6, 2026-08-28 .. 2026-08-31 all give 2027-02-28, and the answer for
    2027-02-28 is 2026-08-31, not add_months(2027-02-28, -6) = 2026-08-28.
    """
    d = rules.add_months(last_day, -months)
    while rules.add_months(d, months) > last_day:
        d -= timedelta(days=1)
    while rules.add_months(d + timedelta(days=1), months) <= last_day:
        d += timedelta(days=1)
    return d


def inactivity_cutoff(dbs: Databases, as_of: date, within_days: int) -> datetime:
    """Naive-UTC bound: an account whose last activity is at or after it cannot be nearing
    deletion by `as_of + within_days` (R13).

    Every account in the window has `eligible_on <= as_of + within_days` (with a valid
    notice, deletable_on >= eligible_on), so its last activity is on or before the latest
    Oslo day whose `add_months(day, account_inactivity_months)` falls in the window.
    """
    horizon = as_of + timedelta(days=within_days)
    last_day = latest_start_within(horizon, dbs.policy.account_inactivity_months)
    return day_end_utc(last_day)


def support_started_cutoff(dbs: Databases, as_of: date) -> datetime:
    """Naive-UTC bound: contacts started before it are past retention on `as_of` (R16).

    Past retention means `as_of > add_months(started_on, support_log_months)`, i.e. the
    retained-until date is at most the day before `as_of`.
    """
    last_day = latest_start_within(as_of - timedelta(days=1), dbs.policy.support_log_months)
    return day_end_utc(last_day)


# --- R13 accounts --------------------------------------------------------------------------


def accounts_nearing_deletion(
    dbs: Databases,
    as_of: date,
    within_days: int = 30,
    *,
    stages: Iterable[str] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Accounts whose deletion date is on or before `as_of + within_days`, most overdue
    first (RULES.md R13).

    `key_date` is `deletable_on` when a valid notice exists, else `eligible_on`; past dates
    are included (overdue accounts are the most urgent). Sorted by key_date, then
    account_id. Dates are Europe/Oslo dates; `within_days` is calendar days.
    Columns: account_id, email, full_name, account_type, last_activity_on,
    last_activity_by ('account' | 'member' | 'created'), eligible_on (last activity +
    policy.account_inactivity_months), notice_sent_on (the latest notice, only when valid:
    sent after the last activity), notice_voided (bool: the latest notice was voided by
    activity on or after its day), deletable_on (max(eligible_on, notice + policy.notice_days);
    None without a valid notice), key_date, stage (one of `STAGES`; on_hold overrides),
    on_hold (bool), hold_ids (comma-separated ids of the active holds covering the account:
    on the account, its owner's e-mail or a member's e-mail; None when none).
    `stages` keeps only those stages. Capped at `limit` (default policy.max_rows):
    `.attrs["truncated"]` and `.attrs["total"]` (rows before the cap).
    Raises ValueError for an unknown stage or negative `within_days`; DatabaseUnavailable
    when the users or ledger database is down.

    Only the accounts with a notice or a possible hold are looked at one by one; the others'
    stage follows from their last activity, so they are read in that order from an index
    (`activity.walk_inactive`) until the first `limit` rows are certain.
    """
    wanted = _checked_stages(stages)
    limit = limit or dbs.policy.max_rows
    window = _Window(dbs, as_of, within_days)
    special = _special_states(dbs, as_of)
    shown = window.inside(special)
    if wanted is not None:
        shown = shown[shown["stage"].isin(wanted)]
    days = window.plain_days(wanted)
    if days is None:
        frame, total = _sorted(shown), len(shown)
    else:
        total = len(shown) + window.count_plain(special, *days)
        frame = _first_rows(dbs, window, special, shown, days, limit)
    capped = frame.head(limit).reset_index(drop=True)
    result = _shown(capped[ACCOUNT_COLUMNS])
    result.attrs.update(truncated=total > limit, total=total)
    return result


def stage_counts(dbs: Databases, as_of: date, within_days: int = 30) -> dict[str, int]:
    """Exact number of accounts nearing deletion per stage, all five stages present (R13).

    Same window and stage rules as `accounts_nearing_deletion`, without the row cap: the
    accounts without a notice or hold are counted by SQL aggregates over the activity index
    (notice_due and upcoming follow from the last activity day), the others one by one."""
    window = _Window(dbs, as_of, within_days)
    special = _special_states(dbs, as_of)
    counts = dict.fromkeys(STAGES, 0)
    counts["notice_due"] = window.count_plain(special, None, window.due_day)
    if window.due_day < window.last_day:
        counts["upcoming"] = window.count_plain(special, window.due_day, window.last_day)
    for stage, n in window.inside(special)["stage"].value_counts().items():
        counts[stage] += int(n)
    return counts


def _checked_stages(stages: Iterable[str] | None) -> list[str] | None:
    if stages is None:
        return None
    stages = [stages] if isinstance(stages, str) else list(stages)
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ValueError(f"Unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGES)}.")
    return stages


class _Window:
    """The R13 window of `as_of + within_days` in last-activity days.

    An account without a notice or hold ("plain") is inside the window when its last
    activity is on or before `last_day` (eligible_on <= horizon), and is notice_due when it
    is on or before `due_day` (eligible_on - notice_days <= as_of), else upcoming."""

    def __init__(self, dbs: Databases, as_of: date, within_days: int):
        if within_days < 0:
            raise ValueError(f"within_days must be >= 0, got {within_days}.")
        policy = self.policy = dbs.policy
        self.dbs = dbs
        self.as_of = pd.Timestamp(as_of)
        self.horizon = pd.Timestamp(as_of + timedelta(days=within_days))
        months = policy.account_inactivity_months
        self.last_day = latest_start_within(as_of + timedelta(days=within_days), months)
        notice_from = latest_start_within(as_of + timedelta(days=policy.notice_days), months)
        self.due_day = min(self.last_day, notice_from)

    def inside(self, states: pd.DataFrame) -> pd.DataFrame:
        return states[states["key_date"] <= self.horizon]

    def plain_days(self, wanted: list[str] | None) -> tuple[date | None, date] | None:
        """(after, through) last-activity days of the plain accounts in the wanted stages
        (after None: from the first), or None when no plain account can be wanted."""
        due = wanted is None or "notice_due" in wanted
        upcoming = (wanted is None or "upcoming" in wanted) and self.due_day < self.last_day
        if due:
            return None, self.last_day if upcoming else self.due_day
        return (self.due_day, self.last_day) if upcoming else None

    def count_plain(self, special: pd.DataFrame, after: date | None, through: date) -> int:
        """Plain accounts whose last activity day is in (after, through]."""
        bounds = [day_end_utc(through)] + ([day_end_utc(after)] if after else [])
        counts = activity.count_inactive(self.dbs, bounds)
        days = special["last_activity_on"]
        inside = days <= pd.Timestamp(through)
        if after is not None:
            inside &= days > pd.Timestamp(after)
        return counts[0] - (counts[1] if after else 0) - int(inside.sum())

    def complete_through(self, last_own: datetime) -> pd.Timestamp:
        """The latest key date up to which every plain account has been read, once the
        walk has read every account whose own activity is before `last_own`."""
        day = oslo_date(last_own)
        eligible = rules.account_eligible_on(day, self.policy.account_inactivity_months)
        return pd.Timestamp(eligible - timedelta(days=1))


def _first_rows(
    dbs: Databases,
    window: _Window,
    special: pd.DataFrame,
    shown: pd.DataFrame,
    days: tuple[date | None, date],
    limit: int,
) -> pd.DataFrame:
    """The wanted special rows and the plain accounts of `days`, sorted, holding at least
    the first `limit` rows of the full list (or all of it)."""
    after, through = days
    lower = day_end_utc(after) if after else None
    upper = day_end_utc(through)
    skip = set(special["account_id"])
    eligible: dict[pd.Timestamp, pd.Timestamp] = {}

    def plain(rows: list[tuple]) -> pd.DataFrame:
        raw = _raw_frame([r for r in rows if r[0] not in skip])
        frame = _with_dates(dbs, raw, {}, eligible)
        frame["hold_ids"] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
        frame["on_hold"] = False
        frame["stage"] = _stages(frame, window.as_of, window.policy.notice_days)
        return frame

    parts = [shown] + ([plain(activity.member_active_between(dbs, lower, upper))] if lower else [])
    complete = None
    for rows, last_own in activity.walk_inactive(dbs, lower, upper, max(2 * limit, _WALK_ROWS)):
        parts.append(plain(rows))
        complete = window.complete_through(last_own)
        merged = pd.concat(parts, ignore_index=True)
        if int((merged["key_date"] <= complete).sum()) >= limit:
            return _sorted(merged[merged["key_date"] <= complete])
    return _sorted(pd.concat(parts, ignore_index=True))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["key_date", "account_id"], kind="stable", ignore_index=True)


def _special_states(dbs: Databases, as_of: date) -> pd.DataFrame:
    """The R13 state of every account with a notice or possibly under a hold (their stage
    is not given by their last activity alone), unformatted (`_states_frame`)."""
    keys = holds.held_keys(dbs)
    latest_notices = _latest_notices(dbs)
    ids = set(latest_notices) | set(keys["account"])
    ids |= set(_held_member_emails(dbs, keys["email"]))
    ids |= _held_owner_accounts(dbs, keys["email"])
    return _states_frame(dbs, sorted(ids), as_of, latest_notices)


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    """The capped rows with `datetime.date` values in the date columns (None for none)."""
    frame = frame.copy()
    for column in ("last_activity_on", "eligible_on", "notice_sent_on", "deletable_on", "key_date"):
        frame[column] = _as_dates(frame[column])
    return frame


def _frames(result) -> Iterator[pd.DataFrame]:
    columns = list(result.keys())
    for part in result.partitions():
        # Column lists, not Row objects: pandas probes each Row's attributes otherwise.
        yield pd.DataFrame(dict(zip(columns, map(list, zip(*part, strict=True)), strict=True)))


def _raw_frame(rows: list) -> pd.DataFrame:
    """Rows in activity.ACTIVITY_COLUMNS order as a frame, built from column lists (pandas
    probes each Row object's attributes otherwise)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(activity.ACTIVITY_COLUMNS)
    return pd.DataFrame(
        {
            name: list(values)
            for name, values in zip(activity.ACTIVITY_COLUMNS, columns, strict=True)
        }
    )


def account_states(dbs: Databases, account_ids: Iterable[int], as_of: date) -> pd.DataFrame:
    """The R13 state of the given accounts as of `as_of`, whatever their window: the
    columns of `accounts_nearing_deletion` (dates as datetime.date), in account_id order.

    Actions re-check state with this just before they act. Ids that do not exist are
    absent from the result. Raises DatabaseUnavailable when users or ledger is down.
    """
    ids = sorted({int(i) for i in account_ids})
    frame = _states_frame(dbs, ids, as_of, _latest_notices_of(dbs, ids))
    return _shown(frame[ACCOUNT_COLUMNS].reset_index(drop=True))


def _states_frame(
    dbs: Databases, ids: list[int], as_of: date, latest_notices: dict[int, date]
) -> pd.DataFrame:
    """`account_states` with date columns as datetime64 days, in account_id order."""
    rows: list[tuple] = []
    with dbs.users.connect() as conn:
        for chunk in _chunks(ids, _ID_CHUNK):
            query = activity.activity_select().where(accounts.c.id.in_(chunk))
            rows.extend(conn.execute(query.order_by(accounts.c.id)).all())
    raw = _raw_frame(rows) if rows else None
    frame = _with_dates(dbs, raw, latest_notices, {})
    frame = _with_holds(dbs, frame)
    frame["stage"] = _stages(frame, pd.Timestamp(as_of), dbs.policy.notice_days)
    return frame[ACCOUNT_COLUMNS]


def _latest_notices_of(dbs: Databases, account_ids: list[int]) -> dict[int, date]:
    """account_id -> sent_on of its latest notice, for the given accounts only."""
    latest: dict[int, date] = {}
    with dbs.ledger.connect() as conn:
        for chunk in _chunks(account_ids):
            query = (
                select(notices.c.account_id, func.max(notices.c.sent_on))
                .where(notices.c.account_id.in_(chunk))
                .group_by(notices.c.account_id)
                .order_by(notices.c.account_id)
            )
            latest.update(conn.execute(query).all())
    return latest


def _latest_notices(dbs: Databases) -> dict[int, date]:
    """account_id -> sent_on of its latest notice. The ledger's notices are few (a deletion
    removes them), so they are streamed whole rather than looked up per account."""
    query = select(notices.c.account_id, notices.c.sent_on).order_by(
        notices.c.account_id, notices.c.sent_on, notices.c.id
    )
    latest: dict[int, date] = {}
    with dbs.ledger.connect() as conn:
        for account_id, sent_on in conn.execution_options(yield_per=_STREAM_ROWS).execute(query):
            latest[account_id] = sent_on  # ascending order: the last one seen is the latest
    return latest


def _with_dates(
    dbs: Databases,
    raw: pd.DataFrame | None,
    latest_notices: dict[int, date],
    eligible: dict[pd.Timestamp, pd.Timestamp],
) -> pd.DataFrame:
    """Last activity, eligibility, notice and key date of a chunk of accounts (R13).

    Date columns are datetime64 days (Oslo) here, for vectorised comparison."""
    if raw is None:
        raw = pd.DataFrame(columns=activity.ACTIVITY_COLUMNS)
    policy = dbs.policy
    frame = raw[["account_id", "email", "full_name", "account_type"]].copy()
    own = utc_naive_series(raw["last_active_at"])
    member = utc_naive_series(raw["member_last_active_at"])
    created = utc_naive_series(raw["created_at"])
    latest = pd.concat([own, member, created], axis=1).max(axis=1)
    # Ties name the account itself first, then a member, then creation.
    frame["last_activity_by"] = np.select(
        [own.eq(latest), member.eq(latest)], ["account", "member"], "created"
    )
    frame["last_activity_on"] = _oslo_days(latest)
    frame["eligible_on"] = _map_days(
        frame["last_activity_on"],
        lambda d: rules.account_eligible_on(d, policy.account_inactivity_months),
        eligible,
    )
    sent = pd.to_datetime(frame["account_id"].map(latest_notices))
    valid = sent.notna() & (sent > frame["last_activity_on"])
    frame["notice_voided"] = sent.notna() & ~valid
    frame["notice_sent_on"] = sent.where(valid)
    frame["deletable_on"] = (
        pd.concat([frame["eligible_on"], sent + pd.Timedelta(days=policy.notice_days)], axis=1)
        .max(axis=1)
        .where(valid)
    )
    frame["key_date"] = frame["deletable_on"].where(valid, frame["eligible_on"])
    return frame


def _stages(frame: pd.DataFrame, as_of: pd.Timestamp, notice_days: int) -> np.ndarray:
    """R13 stages; a hold overrides, then ready / notified with a valid notice, then by the
    distance to eligible_on."""
    valid = frame["notice_sent_on"].notna()
    notice_from = frame["eligible_on"] - pd.Timedelta(days=notice_days)
    return np.select(
        [
            frame["on_hold"].to_numpy(dtype=bool),
            (valid & (frame["deletable_on"] <= as_of)).to_numpy(dtype=bool),
            valid.to_numpy(dtype=bool),
            (notice_from <= as_of).to_numpy(dtype=bool),
        ],
        ["on_hold", "ready", "notified", "notice_due"],
        "upcoming",
    ).astype(object)


def _with_holds(dbs: Databases, frame: pd.DataFrame) -> pd.DataFrame:
    """on_hold / hold_ids of each account from the ledger's active holds (R13, R17).

    Vectorised first pass: only accounts named by a hold, owned by a held e-mail or having
    a held member can be covered; the exact per-account hold ids are computed for those."""
    keys = holds.held_keys(dbs)
    members = _held_member_emails(dbs, keys["email"])
    owner_emails = frame["email"].map(holds.normalise_email)
    maybe = (
        frame["account_id"].isin(list(keys["account"]))
        | owner_emails.isin(list(keys["email"]))
        | frame["account_id"].isin(list(members))
    )
    subset = frame[maybe]
    held = account_holds(
        dbs, dict(zip(subset["account_id"], subset["email"], strict=True)), members=members
    )
    frame["hold_ids"] = pd.Series(
        [_joined(held.get(a)) for a in frame["account_id"]], index=frame.index, dtype=object
    )
    frame["on_hold"] = frame["account_id"].isin(list(held)).astype(bool)
    return frame


def account_holds(
    dbs: Databases,
    owners: dict[int, str | None],
    *,
    members: dict[int, set[str]] | None = None,
) -> dict[int, list[int]]:
    """account_id -> ids of the active holds covering it, for the accounts in `owners`
    (account_id -> owner's e-mail; None to look it up). Covered accounts only (R13, R17).

    A hold covers an account when it names the account, its owner's e-mail or a member's
    e-mail (trimmed, case-insensitive). A hold on a support contact never covers an account.
    `members` (account_id -> held member e-mails) saves a lookup when the caller has it.
    """
    if not owners:
        return {}
    missing = [a for a, e in owners.items() if e is None]
    owners = {**owners, **_owner_emails(dbs, missing)}
    if members is None:
        members = _held_member_emails(dbs, holds.held_keys(dbs)["email"])
    member_emails = {e for a in owners if a in members for e in members[a]}
    cover = holds.covering_holds(
        dbs,
        account_ids=owners,
        emails={e for e in owners.values() if e} | member_emails,
    )
    by_email = cover["email"]
    result: dict[int, list[int]] = {}
    for account_id, owner in owners.items():
        ids = set(cover["account"].get(account_id, ()))
        ids.update(by_email.get(holds.normalise_email(owner), ()))
        for email in members.get(account_id, ()):
            ids.update(by_email.get(email, ()))
        if ids:
            result[account_id] = sorted(ids)
    return result


def _owner_emails(dbs: Databases, account_ids: list[int]) -> dict[int, str | None]:
    found: dict[int, str | None] = dict.fromkeys(account_ids)
    with dbs.users.connect() as conn:
        for chunk in _chunks(sorted(account_ids)):
            query = (
                select(accounts.c.id, accounts.c.email)
                .where(accounts.c.id.in_(chunk))
                .order_by(accounts.c.id)
            )
            found.update((account_id, email) for account_id, email in conn.execute(query))
    return found


def _held_member_emails(dbs: Databases, emails: frozenset[str]) -> dict[int, set[str]]:
    """account_id -> normalised e-mails of its members that a hold names.

    Looked up from the held e-mails (a handful) rather than from the accounts (up to
    millions); the e-mail match is R12's, confirmed in Python."""
    found: dict[int, set[str]] = defaultdict(set)
    for account_id, norm in _held_email_rows(dbs, account_members, "account_id", emails):
        found[account_id].add(norm)
    return dict(found)


def _held_owner_accounts(dbs: Databases, emails: frozenset[str]) -> set[int]:
    """Ids of the accounts whose owner's e-mail a hold names (R13, R17)."""
    return {account_id for account_id, _ in _held_email_rows(dbs, accounts, "id", emails)}


def _held_email_rows(dbs: Databases, table, key: str, emails: frozenset[str]):
    """(table.key, normalised e-mail) of the rows of `table` whose e-mail is one of the held
    `emails`, by R12's match (SQL gives a superset, confirmed in Python)."""
    dialect = dbs.users.dialect.name
    column = table.c.email
    with dbs.users.connect() as conn:
        # One query per held e-mail (a handful): SQLite serves each from the e-mail index,
        # while an OR of several makes it scan the table.
        for norm in sorted(emails):
            query = select(table.c[key], column).where(email_condition(column, norm, dialect))
            for key_value, email in conn.execute(query):
                if holds.normalise_email(email) == norm:  # the exact R12 comparison
                    yield key_value, norm


# --- R16 support contacts ------------------------------------------------------------------


def support_contacts_past_retention(
    dbs: Databases, as_of: date, *, channel: str | None = None, limit: int | None = None
) -> pd.DataFrame:
    """Customer-service logs past their retention on `as_of`, oldest first (RULES.md R16).

    `retained_until = add_months(started_on, policy.support_log_months)`; a contact is
    purgeable from the day after, so it is listed when `as_of > retained_until`. Contacts
    under a legal hold are listed with on_hold True (their purge is blocked, R17).
    Columns: contact_id, channel, started_at (naive UTC), started_on and retained_until
    (Oslo dates), account_id, on_hold (bool: a hold names the contact, its e-mail or its
    account, or covers that account as in R13), hold_ids (comma-separated or None).
    `channel` keeps one of 'chat' | 'email' | 'phone'. Sorted by started_at, contact_id;
    capped at `limit` (default policy.max_rows) with `.attrs["truncated"]`/`["total"]`.
    Raises ValueError for an unknown channel; DatabaseUnavailable when a store is down.
    """
    limit = limit or dbs.policy.max_rows
    where = _contact_filter(dbs, as_of, channel)
    query = (
        select(
            contacts.c.id.label("contact_id"),
            contacts.c.channel,
            contacts.c.started_at,
            contacts.c.account_id,
            contacts.c.email,
        )
        .where(*where)
        .order_by(contacts.c.started_at, contacts.c.id)
        .limit(limit + 1)
    )
    with dbs.support.connect() as conn:
        rows = conn.execute(query).mappings().all()
    frame = pd.DataFrame(
        rows, columns=["contact_id", "channel", "started_at", "account_id", "email"]
    )
    frame["started_on"] = oslo_dates(frame["started_at"])
    months = dbs.policy.support_log_months
    frame["retained_until"] = _per_day(
        frame["started_on"], lambda d: rules.support_contact_retained_until(d, months)
    )
    frame = _contact_holds(dbs, frame.head(limit))
    return _with_total(
        frame[CONTACT_COLUMNS],
        truncated=len(rows) > limit,
        count=lambda: count_support_contacts_past_retention(dbs, as_of, channel=channel),
    )


def count_support_contacts_past_retention(
    dbs: Databases, as_of: date, *, channel: str | None = None
) -> int:
    """How many customer-service logs are past retention on `as_of`, held ones included (R16)."""
    query = select(func.count()).select_from(contacts).where(*_contact_filter(dbs, as_of, channel))
    with dbs.support.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _contact_filter(dbs: Databases, as_of: date, channel: str | None) -> list:
    cutoff = support_started_cutoff(dbs, as_of)
    where = [sql_time.before(contacts.c.started_at, cutoff, dbs.support.dialect.name)]
    if channel is not None:
        if channel not in CHANNELS:
            raise ValueError(f"Unknown channel '{channel}'; known: {', '.join(CHANNELS)}.")
        where.append(contacts.c.channel == channel)
    return where


def _contact_holds(dbs: Databases, frame: pd.DataFrame) -> pd.DataFrame:
    """on_hold / hold_ids of support contacts: a hold on the contact, on its e-mail, or one
    covering its account (the account's data is in the account's scope, R17)."""
    frame = frame.copy()
    account_ids = {int(a) for a in frame["account_id"].dropna()}
    held_accounts = account_holds(dbs, dict.fromkeys(account_ids)) if account_ids else {}
    cover = holds.covering_holds(
        dbs, contact_ids=frame["contact_id"], emails=frame["email"].dropna()
    )
    hold_ids = []
    for contact_id, email, account_id in zip(
        frame["contact_id"], frame["email"], frame["account_id"], strict=True
    ):
        ids = set(cover["contact"].get(contact_id, ()))
        if isinstance(email, str):
            ids.update(cover["email"].get(holds.normalise_email(email), ()))
        if pd.notna(account_id):
            ids.update(held_accounts.get(int(account_id), ()))
        hold_ids.append(_joined(sorted(ids)))
    frame["hold_ids"] = pd.Series(hold_ids, index=frame.index, dtype=object)
    frame["on_hold"] = frame["hold_ids"].notna().astype(bool)
    frame["account_id"] = _optional_ints(frame["account_id"])
    return frame


# --- R15 invoices --------------------------------------------------------------------------


def invoices_past_retention(
    dbs: Databases, as_of: date, *, limit: int | None = None
) -> pd.DataFrame:
    """Invoices past bookkeeping retention that still hold personal data, oldest first
    (RULES.md R15; bokføringsloven §13).

    `retained_until` = end of the financial year of `issued_on` (policy.fiscal_year_end)
    plus policy.invoice_retention_years years; anonymisable from the next day. Only
    invoices with customer_name or contact_person set are listed (anonymised ones are done).
    Columns: invoice_id, invoice_number, issued_on, retained_until (dates), account_id,
    on_hold (bool: a hold covers the invoice's account as in R13), hold_ids. Sorted by
    issued_on, invoice_id; capped at `limit` (default policy.max_rows) with
    `.attrs["truncated"]` / `["total"]`. Raises DatabaseUnavailable when a store is down.
    """
    limit = limit or dbs.policy.max_rows
    query = (
        select(
            invoices.c.id.label("invoice_id"),
            invoices.c.invoice_number,
            invoices.c.issued_on,
            invoices.c.account_id,
        )
        .where(*_invoice_filter(dbs, as_of))
        .order_by(invoices.c.issued_on, invoices.c.id)
        .limit(limit + 1)
    )
    with dbs.users.connect() as conn:
        rows = conn.execute(query).mappings().all()
    frame = pd.DataFrame(
        rows[:limit], columns=["invoice_id", "invoice_number", "issued_on", "account_id"]
    )
    policy = dbs.policy
    frame["retained_until"] = _per_day(
        frame["issued_on"],
        lambda d: rules.invoice_retained_until(
            d, policy.invoice_retention_years, policy.fiscal_year_end_md
        ),
    )
    return _with_total(
        _invoice_holds(dbs, frame)[INVOICE_COLUMNS],
        truncated=len(rows) > limit,
        count=lambda: count_invoices_past_retention(dbs, as_of),
    )


def _invoice_holds(dbs: Databases, frame: pd.DataFrame) -> pd.DataFrame:
    """on_hold / hold_ids of invoices: a hold covering the invoice's account (R15, R17)."""
    frame = frame.copy()
    account_ids = {int(a) for a in frame["account_id"].dropna()}
    held = account_holds(dbs, dict.fromkeys(account_ids)) if account_ids else {}
    frame["hold_ids"] = pd.Series(
        [_joined(held.get(int(a))) if pd.notna(a) else None for a in frame["account_id"]],
        index=frame.index,
        dtype=object,
    )
    frame["on_hold"] = frame["hold_ids"].notna().astype(bool)
    frame["account_id"] = _optional_ints(frame["account_id"])
    return frame


def count_invoices_past_retention(dbs: Databases, as_of: date) -> int:
    """How many invoices holding personal data are past retention on `as_of` (R15)."""
    query = select(func.count()).select_from(invoices).where(*_invoice_filter(dbs, as_of))
    with dbs.users.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _invoice_filter(dbs: Databases, as_of: date) -> list:
    policy = dbs.policy
    cutoff = rules.invoice_issued_cutoff(
        as_of, policy.invoice_retention_years, policy.fiscal_year_end_md
    )
    return [
        invoices.c.issued_on <= cutoff,
        or_(invoices.c.customer_name.is_not(None), invoices.c.contact_person.is_not(None)),
    ]


# --- helpers -------------------------------------------------------------------------------


def _oslo_days(ts: pd.Series) -> pd.Series:
    """Timestamps (as clock.utc_naive_series takes them) -> their Oslo dates as datetime64
    midnights (NaT stays NaT)."""
    ts = utc_naive_series(ts)
    return ts.dt.tz_localize("UTC").dt.tz_convert(OSLO).dt.tz_localize(None).dt.normalize()


def _map_days(days: pd.Series, rule, known: dict[pd.Timestamp, pd.Timestamp]) -> pd.Series:
    """Apply a date rule to datetime64 days, once per distinct day (`known` caches them)."""
    for day in days.dropna().unique():
        day = pd.Timestamp(day)
        if day not in known:
            known[day] = pd.Timestamp(rule(day.date()))
    return pd.to_datetime(days.map(known))


def _per_day(days: pd.Series, rule) -> list:
    """`rule(day)` for each date of `days`, computed once per distinct day: thousands of
    rows share a few hundred days."""
    known: dict = {}
    return [known[d] if d in known else known.setdefault(d, rule(d)) for d in days]


def _as_dates(series: pd.Series) -> pd.Series:
    """datetime64 days -> `datetime.date` objects, None for NaT (what pages and CSVs show)."""
    series = pd.to_datetime(series)
    return pd.Series(
        [d.date() if not pd.isna(d) else None for d in series], index=series.index, dtype=object
    )


def _optional_ints(series: pd.Series) -> pd.Series:
    """Nullable ids as Python ints and None (not floats or <NA>, which CSVs would print)."""
    return pd.Series(
        [int(v) if not pd.isna(v) else None for v in series], index=series.index, dtype=object
    )


def _joined(hold_ids: list[int] | None) -> str | None:
    """Hold ids as the comma-separated text pages and CSVs show; None when there are none."""
    return ",".join(str(h) for h in hold_ids) if hold_ids else None


def _capped(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    total = len(frame)
    capped = frame.head(limit).copy()
    capped.attrs.update(truncated=total > limit, total=total)
    return capped


def _with_total(frame: pd.DataFrame, *, truncated: bool, count) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame.attrs.update(truncated=truncated, total=count() if truncated else len(frame))
    return frame


def _chunks(values: list[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
