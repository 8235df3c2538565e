"""The plan behind the demo data: scales, the time line, and per-account facts as arrays.

Everything is anchored to `as_of` (the generation day, Europe/Oslo) and derived from the
seed through independent random streams, so the same seed and `as_of` give the same rows
whatever the database. Times are int64 seconds since the epoch in naive UTC; generated
times of day lie between 04:00 and 22:00 UTC, so their Oslo date (RULES.md R1) is the UTC
date and a planned Oslo day stays that day.

The account plan places accounts deliberately in every stage of RULES.md R13 (upcoming,
notice due, notified, ready, on hold, and notices voided by later activity) on top of an
activity history that decays naturally over seven years.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from data_access import rules
from data_access.demo_people import PERSONAL_DOMAIN_WEIGHTS, PERSONAL_DOMAINS, STR, Pools, join
from data_access.settings import Policy

DAY = 86_400
NONE = -1  # "no such time" in the int64 second arrays
DAY_START, DAY_END = 4 * 3600, 21 * 3600  # UTC seconds of day for generated events
EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class Scale:
    """Target row counts of one demo size (DESIGN.md "Demo data"). Members follow from the
    professional accounts (about 0.3 per account); other tables are proportional."""

    name: str
    accounts: int
    invoices: int
    sessions: int
    consent_events: int
    subscribers: int
    contacts: int
    requests: int


SCALES = {
    "small": Scale("small", 2_000, 4_000, 10_000, 20_000, 600, 2_000, 100),
    "medium": Scale("medium", 50_000, 100_000, 250_000, 500_000, 15_000, 50_000, 2_500),
    "large": Scale(
        "large", 1_000_000, 2_000_000, 5_000_000, 10_000_000, 300_000, 1_000_000, 50_000
    ),
}
BATCH_ROWS = 100_000  # fixed for every backend, so batches do not change the data
PRO_SHARE = 0.10  # professional accounts; 1-10 members each, about 3 on average


def stream(seed: int, *tags: str | int) -> np.random.Generator:
    """An independent random stream for one purpose ("accounts", "sessions", chunk 3...)."""
    words = [seed] + [zlib.crc32(t.encode()) if isinstance(t, str) else int(t) for t in tags]
    return np.random.default_rng(np.random.SeedSequence(words))


@dataclass(frozen=True)
class Timeline:
    """Days are int epoch days (UTC = Oslo date for generated times)."""

    as_of: date
    years: int = 7

    @property
    def today(self) -> int:
        return (self.as_of - EPOCH).days

    @property
    def last(self) -> int:
        """The latest day with generated activity: the day before `as_of`."""
        return self.today - 1

    @property
    def start(self) -> int:
        """1 January seven years back: the first accounts and invoices."""
        return (date(self.as_of.year - self.years, 1, 1) - EPOCH).days

    def day(self, d: date) -> int:
        return (d - EPOCH).days

    def date(self, day: int) -> date:
        return EPOCH + timedelta(days=int(day))

    def months(self) -> list[tuple[int, int]]:
        """(first day, day after the last) of each calendar month from `start` to today;
        the current month ends at `as_of`."""
        out = []
        first = self.date(self.start)
        year, month = first.year, first.month
        while date(year, month, 1) <= self.as_of:
            following = date(year + (month == 12), month % 12 + 1, 1)
            out.append((self.day(date(year, month, 1)), min(self.day(following), self.today)))
            year, month = following.year, following.month
        return out


def daytime(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds of day for `n` events, inside the window that keeps the Oslo date."""
    return rng.integers(DAY_START, DAY_END, n)


def growth_days(rng: np.random.Generator, n: int, first: int, last: int, power: float = 1.8):
    """`n` days in [first, last], denser towards `last` (a growing business)."""
    span = last - first + 1
    return first + np.minimum((span * rng.random(n) ** (1 / power)).astype(np.int64), span - 1)


def between(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """A uniform integer in [low, high] per element (high < low gives low)."""
    width = np.maximum(high - low, 0) + 1
    return low + (rng.random(len(low)) * width).astype(np.int64)


def to_datetime64(seconds: np.ndarray) -> np.ndarray:
    """int64 seconds (NONE = NULL) as `datetime64[s]` with NaT for NULL."""
    seconds = np.asarray(seconds, dtype=np.int64)
    return np.where(seconds == NONE, np.iinfo(np.int64).min, seconds).view("datetime64[s]")


def to_date64(days: np.ndarray) -> np.ndarray:
    """int64 epoch days (NONE = NULL) as `datetime64[D]` with NaT for NULL."""
    days = np.asarray(days, dtype=np.int64)
    return np.where(days == NONE, np.iinfo(np.int64).min, days).view("datetime64[D]")


# --- accounts ---------------------------------------------------------------------------------

STAGE_BUCKETS = (
    "upcoming",
    "notice_due",
    "just_past",
    "far_past",
    "notified",
    "ready",
    "voided",
)
HOLD_ACCOUNTS = ("account", "owner_email", "member_email", "released", "past_review")
# consent_events.source values, by the codes the plans use.
SOURCES = (
    "signup_form",
    "app_settings",
    "cookie_banner",
    "newsletter_form",
    "unsubscribe_link",
    "support",
)
SIGNUP, APP_SETTINGS, COOKIE_BANNER, NEWSLETTER_FORM, UNSUBSCRIBE_LINK, SUPPORT = range(6)


@dataclass
class Notices:
    """Inactivity notices the DPO has sent (RULES.md R13): one entry per notice."""

    account: np.ndarray  # account index (id - 1)
    sent_day: np.ndarray
    last_activity_day: np.ndarray  # what the notice was based on
    deletable_day: np.ndarray


class AccountPlan:
    """Per-account facts as arrays indexed by account id - 1 (see module docstring)."""

    def __init__(self, scale: Scale, seed: int, tl: Timeline, policy: Policy, pools: Pools):
        self.n = n = scale.accounts
        self.tl, self.policy, self.pools, self.seed = tl, policy, pools, seed
        r = stream(seed, "accounts")
        self.ids = np.arange(1, n + 1, dtype=np.int64)
        self.pro = r.random(n) < PRO_SHARE
        sizes = np.arange(1, 11)
        weights = 0.7 ** (sizes - 1)
        self.n_members = np.where(self.pro, r.choice(sizes, n, p=weights / weights.sum()), 0)
        self.member_offset = np.concatenate([[0], np.cumsum(self.n_members)[:-1]])
        # Small integer types: a million accounts' facts stay within a few hundred MB.
        self.first = r.integers(0, len(pools.first), n, dtype=np.int32)
        self.last = r.integers(0, len(pools.last), n, dtype=np.int32)
        self.last2 = np.where(r.random(n) < 0.2, r.integers(0, len(pools.last), n), -1).astype(
            np.int32
        )
        self.domain = r.choice(len(PERSONAL_DOMAINS), n, p=PERSONAL_DOMAIN_WEIGHTS).astype(np.int8)
        self.company = r.integers(0, len(pools.companies), n, dtype=np.int32)
        self.style = r.integers(0, 2, n, dtype=np.int8)
        self.mixed_case = r.random(n) < 0.05
        other_contact = self.pro & (r.random(n) < 0.3)
        self.contact_first = np.where(other_contact, r.integers(0, len(pools.first), n), -1).astype(
            np.int32
        )
        self.contact_last = np.where(other_contact, r.integers(0, len(pools.last), n), -1).astype(
            np.int32
        )
        self._activity(r)
        self.buckets: dict[str, np.ndarray] = {}
        self.holds: dict[str, int] = {}
        notices = self._place_buckets(stream(seed, "buckets"))
        self.notices = self._natural_notices(stream(seed, "notices"), notices)
        self._owner_activity(stream(seed, "owners"))
        self._consent(stream(seed, "usage_consent"), stream(seed, "web_consent"))

    # --- activity ----------------------------------------------------------------------

    def _activity(self, r: np.random.Generator) -> None:
        """Created days growing over seven years; last activity decaying: some accounts
        never used, many active lately, the rest churned after a while."""
        tl, n = self.tl, self.n
        self.created_day = growth_days(r, n, tl.start, tl.last - 1)
        kind = r.choice(3, n, p=[0.04, 0.5, 0.46])  # never active | active | churned
        recent = tl.last - r.exponential(25, n).astype(np.int64)
        churned = self.created_day + r.exponential(400, n).astype(np.int64)
        # Most accounts that churned over two years ago were deleted before the dashboard
        # (their invoices remain, detached); the rest are the backlog it shows.
        cleaned = (kind == 2) & (churned < tl.today - 730) & (r.random(n) < 0.8)
        kind = np.where(cleaned, 1, kind)
        self.never_active = (kind == 0) & ~self.pro
        activity = np.where(kind == 1, recent, churned)
        self.activity_day = np.clip(
            np.where(self.never_active, self.created_day, activity), self.created_day, tl.last
        )
        self.created_sec = r.integers(DAY_START, DAY_END - 3600, n, dtype=np.int32)
        self.member_latest = self.pro & (r.random(n) < 0.5)

    def _place_buckets(self, r: np.random.Generator) -> list[tuple[int, int, int]]:
        """Put a share of accounts into each R13 stage and the legal-hold scenarios.

        Returns the notices of those accounts as (account index, sent day, based-on day)."""
        tl = self.tl
        k = max(6, self.n // 250)
        pro_pool = iter(r.permutation(np.flatnonzero(self.pro)).tolist())
        personal_pool = iter(r.permutation(np.flatnonzero(~self.pro)).tolist())
        notices: list[tuple[int, int, int]] = []
        for name in STAGE_BUCKETS:
            chosen = [next(pro_pool) for _ in range(-(-k // 4))]
            chosen += [next(personal_pool) for _ in range(k - len(chosen))]
            self.buckets[name] = np.array(sorted(chosen))
            for position, i in enumerate(chosen):
                notice = self._bucket_account(r, name, i, position)
                if notice:
                    notices.append(notice)
        for name in HOLD_ACCOUNTS:
            i = next(pro_pool) if name == "member_email" else next(personal_pool)
            self.holds[name] = i
            last = tl.today - int(r.integers(420, 700))
            self._set_activity(r, i, last)
            if name in ("account", "released"):
                notices.append((i, tl.today - int(r.integers(40, 80)), last))
        return notices

    def _bucket_account(self, r, name: str, i: int, position: int):
        """Set one account's last activity for its stage; its notice, if it has one."""
        tl, months, notice_days = (
            self.tl,
            self.policy.account_inactivity_months,
            self.policy.notice_days,
        )
        as_of = tl.as_of

        def activity_for(eligible: date) -> int:
            return tl.day(rules.add_months(eligible, -months))

        def days(low: int, high: int) -> int:
            return int(r.integers(low, high + 1))

        if self.pro[i] and position == 0:
            self.member_latest[i] = True  # a member, not the owner, was active last
        notice = None
        if name == "upcoming":
            last = activity_for(as_of + timedelta(days=days(31, 90)))
        elif name == "notice_due":
            last = activity_for(as_of + timedelta(days=days(0, 30)))
        elif name == "just_past":
            last = activity_for(as_of - timedelta(days=days(1, 30)))
        elif name == "far_past":
            last = tl.today - days(500, 1500)
        elif name == "notified":
            sent = as_of - timedelta(days=days(1, max(1, min(25, notice_days - 1))))
            last = activity_for(sent + timedelta(days=days(0, 30)))
            notice = (i, tl.day(sent), last)
        elif name == "ready":
            sent = as_of - timedelta(days=days(notice_days, notice_days + 70))
            eligible = min(sent + timedelta(days=days(0, 30)), as_of - timedelta(days=1))
            last = activity_for(eligible)
            notice = (i, tl.day(sent), last)
        else:  # voided: activity on or after the notice day cancels it (R13)
            sent = as_of - timedelta(days=days(20, 90))
            based_on = activity_for(sent + timedelta(days=days(0, 30)))
            notice = (i, tl.day(sent), based_on)
            gap = 0 if position == 0 else days(0, min(15, (as_of - sent).days - 1))
            self._set_activity(r, i, tl.day(sent) + gap, created_by=based_on)
            return notice
        self._set_activity(r, i, last)
        return notice

    def _set_activity(self, r, i: int, last: int, created_by: int | None = None) -> None:
        """Make `last` the account's last activity day; it was created a while before
        (and before `created_by`, an earlier activity a notice was based on)."""
        self.activity_day[i] = min(last, self.tl.last)
        self.never_active[i] = False
        before = last if created_by is None else min(last, created_by)
        self.created_day[i] = max(self.tl.start, before - int(r.integers(30, 900)))

    def _natural_notices(self, r, planned: list[tuple[int, int, int]]) -> Notices:
        """Notices the DPO sent when accounts came within `notice_days` of eligibility, since
        the dashboard went into use about four months ago (60 % of due accounts)."""
        tl, policy = self.tl, self.policy
        placed = np.zeros(self.n, bool)
        for group in self.buckets.values():
            placed[group] = True
        placed[list(self.holds.values())] = True
        year = 366 * policy.account_inactivity_months // 12
        window = (self.activity_day >= tl.today - year - 110) & (
            self.activity_day <= tl.today - year + 40
        )
        rows = list(planned)
        for i in np.flatnonzero(window & ~placed):
            last = int(self.activity_day[i])
            eligible = tl.day(
                rules.account_eligible_on(tl.date(last), policy.account_inactivity_months)
            )
            if not tl.today - 100 <= eligible <= tl.today + 30 or r.random() >= 0.6:
                continue
            sent = eligible - policy.notice_days + int(r.integers(0, 8))
            if tl.today - 120 <= sent <= tl.last and sent > last:
                rows.append((int(i), sent, last))
        rows.sort(key=lambda row: (row[1], row[0]))
        account = np.array([row[0] for row in rows], dtype=np.int64)
        sent = np.array([row[1] for row in rows], dtype=np.int64)
        based = np.array([row[2] for row in rows], dtype=np.int64)
        deletable = np.array(
            [
                tl.day(
                    rules.account_deletable_on(
                        rules.account_eligible_on(tl.date(b), policy.account_inactivity_months),
                        tl.date(s),
                        policy.notice_days,
                    )
                )
                for s, b in zip(sent, based, strict=True)
            ],
            dtype=np.int64,
        )
        return Notices(account, sent, based, deletable)

    def _owner_activity(self, r) -> None:
        """The owner's own last activity: the account's, or earlier when a member was the
        last one active (RULES.md R13 takes the latest of owner, members and created_at)."""
        earlier = self.activity_day - r.integers(1, 300, self.n)
        owner = np.where(
            self.member_latest, np.maximum(earlier, self.created_day), self.activity_day
        )
        self.owner_last_day = np.where(self.never_active, NONE, owner)
        self.owner_last_sec = daytime(r, self.n).astype(np.int32)

    @property
    def created_s(self) -> np.ndarray:
        return self.created_day * DAY + self.created_sec

    @property
    def owner_last_s(self) -> np.ndarray:
        return np.where(
            self.owner_last_day == NONE, NONE, self.owner_last_day * DAY + self.owner_last_sec
        )

    # --- consent ----------------------------------------------------------------------

    def _consent(self, r, w) -> None:
        """Usage-statistics consent per account (granted at signup or later in the app
        settings, sometimes withdrawn, rarely granted again), and the cookie-banner choice
        of the accounts that were signed in on the website."""
        n, tl = self.n, self.tl
        created_s = self.created_s
        granted = r.random(n) < 0.75
        at_signup = r.random(n) < 0.85
        later_day = between(r, self.created_day + 1, self.activity_day)
        later_day = np.minimum(later_day, tl.last)
        self.usage_grant_s = np.where(
            ~granted,
            NONE,
            np.where(at_signup, created_s + r.integers(5, 120, n), later_day * DAY + daytime(r, n)),
        )
        self.usage_grant_source = np.where(at_signup, SIGNUP, APP_SETTINGS).astype(np.int8)
        grant_day = self.usage_grant_s // DAY
        limit = np.minimum(self.activity_day + 90, tl.last)
        withdraws = granted & (r.random(n) < 0.15) & (limit > grant_day)
        withdraw_day = between(r, grant_day + 1, limit)
        self.usage_withdraw_s = np.where(withdraws, withdraw_day * DAY + daytime(r, n), NONE)
        self.usage_withdraw_source = np.where(r.random(n) < 0.8, APP_SETTINGS, SUPPORT).astype(
            np.int8
        )
        regrants = withdraws & (r.random(n) < 0.1) & (withdraw_day < tl.last)
        regrant_day = between(r, withdraw_day + 1, np.full(n, tl.last))
        self.usage_regrant_s = np.where(regrants, regrant_day * DAY + daytime(r, n), NONE)
        declined = ~granted & (r.random(n) < 0.4)
        self.usage_declined_s = np.where(declined, created_s + r.integers(5, 120, n), NONE)
        # R22 findings: a few accounts recorded sessions while consent was not granted.
        could_leak = (~granted & ~self.never_active) | (
            withdraws & (self.activity_day > withdraw_day + 1)
        )
        self.leaky = could_leak & (r.random(n) < 0.02)
        if self.leaky.sum() < 5:
            self.leaky[np.flatnonzero(could_leak)[:5]] = True

        on_web = w.random(n) < 0.2
        web_day = between(w, self.created_day, self.activity_day)
        self.web_s = np.where(on_web, web_day * DAY + daytime(w, n), NONE)
        self.web_choice = w.choice(3, n, p=[0.6, 0.25, 0.15]).astype(
            np.int8
        )  # all | none | statistics only
        web_withdraws = on_web & (self.web_choice != 1) & (w.random(n) < 0.08) & (web_day < tl.last)
        web_withdraw_day = between(w, web_day + 1, np.full(n, tl.last))
        self.web_withdraw_s = np.where(web_withdraws, web_withdraw_day * DAY + daytime(w, n), NONE)

    # --- names and addresses -------------------------------------------------------------

    def full_names(self, idx: np.ndarray) -> np.ndarray:
        return self.pools.full_names(self.first[idx], self.last[idx], self.last2[idx])

    def emails(self, idx: np.ndarray, *, as_typed: bool = True) -> np.ndarray:
        """The owners' e-mail addresses; `as_typed` keeps the mixed case some were typed in."""
        p = self.pools
        first, last = p.first_ascii[self.first[idx]], p.last_ascii[self.last[idx]]
        local = np.where(
            self.style[idx] == 0,
            join(first, ".", last),
            join(np.strings.slice(first, 0, 1), last),
        )
        personal = np.array(PERSONAL_DOMAINS, dtype=STR)[self.domain[idx]]
        domain = np.where(self.pro[idx], p.company_domains[self.company[idx]], personal)
        emails = join(local, self.ids[idx], "@", domain)
        if as_typed:
            emails = np.where(self.mixed_case[idx], np.strings.title(emails), emails)
        return emails

    def company_names(self, idx: np.ndarray) -> np.ndarray:
        return self.pools.companies[self.company[idx]]

    def contact_persons(self, idx: np.ndarray) -> np.ndarray:
        """Professional accounts' contact person: the owner, or a named colleague."""
        own = self.full_names(idx)
        other = self.contact_first[idx] >= 0
        colleague = self.pools.full_names(
            np.maximum(self.contact_first[idx], 0),
            np.maximum(self.contact_last[idx], 0),
            np.full(len(idx), -1),
        )
        return np.where(other, colleague, own)


# --- newsletter subscribers ------------------------------------------------------------------


class SubscriberPlan:
    """Newsletter subscribers: 40 % are account owners, the rest only subscribe.

    A few active subscribers have no granted newsletter consent at all, and one has only
    a withdrawal that was never processed: findings of RULES.md R22."""

    def __init__(self, scale: Scale, seed: int, tl: Timeline, accounts: AccountPlan):
        r = stream(seed, "subscribers")
        n = self.n = scale.subscribers
        self.ids = np.arange(1, n + 1, dtype=np.int64)
        owners = r.random(n) < 0.4
        self.account = np.full(n, NONE, dtype=np.int64)
        self.account[owners] = r.choice(accounts.n, int(owners.sum()), replace=False)
        self.first = r.integers(0, len(accounts.pools.first), n)
        self.last = r.integers(0, len(accounts.pools.last), n)
        self.domain = r.choice(len(PERSONAL_DOMAINS), n, p=PERSONAL_DOMAIN_WEIGHTS)
        a = np.maximum(self.account, 0)
        own_day = between(
            r, accounts.created_day[a], np.minimum(accounts.activity_day[a] + 30, tl.last)
        )
        other_day = growth_days(r, n, tl.start, tl.last)
        self.subscribed_s = np.where(owners, own_day, other_day) * DAY + daytime(r, n)
        sub_day = self.subscribed_s // DAY
        leaves = (r.random(n) < 0.2) & (sub_day < tl.last)
        self.unsubscribed_s = np.where(
            leaves, between(r, sub_day + 1, np.full(n, tl.last)) * DAY + daytime(r, n), NONE
        )
        self.named = owners | (r.random(n) < 0.85)
        self.mixed_case = r.random(n) < 0.1
        self.event_mixed_case = r.random(n) < 0.15
        self.grant_source = np.where(owners & (r.random(n) < 0.25), SIGNUP, NEWSLETTER_FORM)
        self.withdraw_source = np.where(r.random(n) < 0.9, UNSUBSCRIBE_LINK, SUPPORT)
        active = ~leaves
        self.no_consent = active & (r.random(n) < 0.005)
        if self.no_consent.sum() < 3:
            self.no_consent[np.flatnonzero(active)[:3]] = True
        self.only_withdrawn = np.zeros(n, bool)
        self.only_withdrawn[np.flatnonzero(active & ~self.no_consent)[0]] = True
        self._accounts = accounts

    def emails(self, idx: np.ndarray | None = None) -> np.ndarray:
        """The address as the subscriber list holds it (some typed in mixed case)."""
        idx = np.arange(self.n) if idx is None else idx
        p = self._accounts.pools
        own = self.account[idx] >= 0
        from_account = self._accounts.emails(np.maximum(self.account[idx], 0), as_typed=False)
        personal = np.array(PERSONAL_DOMAINS, dtype=STR)[self.domain[idx]]
        others = join(
            p.first_ascii[self.first[idx]],
            "_",
            p.last_ascii[self.last[idx]],
            self.ids[idx],
            "@",
            personal,
        )
        emails = np.where(own, from_account, others)
        return np.where(self.mixed_case[idx], np.strings.title(emails), emails)

    def full_names(self, idx: np.ndarray | None = None) -> np.ndarray:
        idx = np.arange(self.n) if idx is None else idx
        own = self.account[idx] >= 0
        from_account = self._accounts.full_names(np.maximum(self.account[idx], 0))
        others = self._accounts.pools.full_names(
            self.first[idx], self.last[idx], np.full(len(idx), -1)
        )
        names = np.where(own, from_account, others).astype(object)
        names[~self.named[idx]] = None
        return names
