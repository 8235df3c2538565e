"""Demo rows of the support database: customer-service contacts and the intake of
data-subject requests, with the case history the ledger records for each request.

Requests are few enough (at most 50,000) to plan whole. A fixed set of scenarios, anchored
to `as_of` with the deadline rules themselves, guarantees every open status the requests
page shows (received without a case, awaiting identity, in progress, extended), requests
overdue and due within five days, a duplicate and a request received just before midnight
UTC (RULES.md R1-R8); the rest follow a realistic mix by age.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np

from data_access import rules
from data_access.clock import oslo_date
from data_access.demo_people import (
    PERSONAL_DOMAINS,
    REQUEST_DETAILS,
    STR,
    SUPPORT_SUMMARIES,
    join,
    phone_numbers,
)
from data_access.demo_plan import (
    BATCH_ROWS,
    DAY,
    AccountPlan,
    Scale,
    SubscriberPlan,
    daytime,
    growth_days,
    stream,
    to_datetime64,
)
from data_access.settings import Policy
from data_access.tables import CHANNELS, REQUEST_TYPES

SUPPORT_MONTHS = 18  # contacts reach back 18 months, so a third is past R16's six months
CHANNEL_P = (0.5, 0.3, 0.2)  # chat, email, phone
# Share of contacts with each field, per channel (chat, email, phone); the policy says phone
# calls record the caller's name, location, number and e-mail.
_HAS = {
    "full_name": (0.7, 0.9, 0.95),
    "email": (0.6, 1.0, 0.4),
    "phone": (0.1, 0.15, 1.0),
    "location": (0.3, 0.05, 0.9),
}


def contacts(accounts: AccountPlan, scale: Scale, seed: int) -> Iterator[dict]:
    """`contacts` on chat, e-mail and phone over the last 18 months, ids in time order;
    40 % from account owners (their name and e-mail, usually the account id too)."""
    tl, pools = accounts.tl, accounts.pools
    first_day = tl.day(rules.add_months(tl.as_of, -SUPPORT_MONTHS))
    n_total = scale.contacts
    for number, low in enumerate(range(0, n_total, BATCH_ROWS)):
        r = stream(seed, "contacts", number)
        n = min(BATCH_ROWS, n_total - low)
        ids = np.arange(low + 1, low + n + 1)
        # Stratified draws keep days rising with the id across batches (a growing service).
        x = (np.arange(low, low + n) + r.random(n)) / n_total
        span = tl.last - first_day + 1
        day = first_day + np.minimum((span * x ** (1 / 1.3)).astype(np.int64), span - 1)
        started = np.sort(day * DAY + daytime(r, n))
        channel = r.choice(3, n, p=CHANNEL_P)
        account = r.integers(0, accounts.n, n)
        linked = (r.random(n) < 0.4) & (accounts.created_day[account] <= started // DAY)
        first, last = r.integers(0, len(pools.first), n), r.integers(0, len(pools.last), n)
        stranger_email = join(
            pools.last_ascii[last],
            ".",
            pools.first_ascii[first],
            ids,
            "@",
            np.array(PERSONAL_DOMAINS, dtype=STR)[r.integers(0, len(PERSONAL_DOMAINS), n)],
        )
        owner_email = np.strings.lower(accounts.emails(account, as_typed=False))
        owner_email = np.where(r.random(n) < 0.1, np.strings.title(owner_email), owner_email)
        name = np.where(
            linked,
            accounts.full_names(account),
            pools.full_names(first, last, np.full(n, -1)),
        )
        has = {k: r.random(n) < np.array(p)[channel] for k, p in _HAS.items()}
        summaries = np.array(
            [
                SUPPORT_SUMMARIES[CHANNELS[c]][i % len(SUPPORT_SUMMARIES[CHANNELS[c]])]
                for c, i in zip(channel, r.integers(0, 100, n), strict=True)
            ],
            dtype=object,
        )
        account_id = np.full(n, None, dtype=object)
        keep_id = linked & (r.random(n) < 0.75)
        account_id[keep_id] = accounts.ids[account[keep_id]]
        yield {
            "id": ids,
            "channel": np.array(CHANNELS, dtype=object)[channel],
            "started_at": to_datetime64(started),
            "full_name": _present(name, has["full_name"]),
            "email": _present(np.where(linked, owner_email, stranger_email), has["email"] | linked),
            "phone": _present(phone_numbers(r, n), has["phone"]),
            "location": _present(
                pools.cities[r.integers(0, len(pools.cities), n)], has["location"]
            ),
            "account_id": account_id,
            "summary": summaries,
        }


def _present(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    out = values.astype(object)
    out[~mask] = None
    return out


# --- data-subject requests ------------------------------------------------------------------

IDENTITY_METHODS = (
    "Reply from the e-mail address on the account",
    "Signed in to the app and confirmed in the chat",
    "Call-back to the phone number on the account",
    "Confirmed the number and amount of a recent invoice",
)
EXTENSION_REASONS = (
    "Complex request: data in four systems and the support archive must be collected.",
    "Several requests from the same person at once (art. 12(3)).",
    "Payment records must be retrieved from the US payment processor.",
)
REFUSAL_REASONS = (
    "Manifestly unfounded: the same request was answered three weeks earlier (art. 12(5)). "
    "The data subject was told of the right to complain to Datatilsynet and to a judicial remedy.",
    "Identity could not be confirmed after two requests (art. 12(6)). The data subject was told "
    "of the right to complain to Datatilsynet and to a judicial remedy.",
    "Erasure refused in part: invoices are kept under bokføringsloven §13 (art. 17(3)(b)). The "
    "data subject was told of the right to complain to Datatilsynet and to a judicial remedy.",
)
OUTCOMES = {
    "access": "Access report (R9) sent to the data subject.",
    "rectification": "Name and e-mail corrected in the users database; recipients notified (R11).",
    "erasure": "Erased in all four databases; invoices kept under bokføringsloven §13 (R12).",
    "restriction": "Processing restricted while accuracy is checked; recipients notified (R11).",
    "portability": "Account, members, usage sessions and consent events sent as JSON and CSV (R10).",
    "objection": "Usage statistics and marketing stopped for the person.",
    "withdraw_consent": "Withdrawal recorded for every purpose (R23).",
}
TASK_TYPES = ("rectification", "erasure", "restriction")  # R11 notifies recipients
NOT_POSSIBLE = (
    "The recipient holds only pseudonymous cookie identifiers it cannot link to the person."
)


@dataclass
class PlannedRequest:
    """One intake row and its ledger history (events as (Oslo date, event, details))."""

    received_at: datetime
    request_type: str
    channel: str
    email: str
    name: str | None
    account_id: int | None
    details: str | None
    status: str
    case: dict | None = None
    events: list[tuple[date, str, dict]] = field(default_factory=list)
    tasks: list[tuple[str, str, str | None, date | None]] = field(default_factory=list)
    id: int = 0


class _RequestPlanner:
    def __init__(self, accounts: AccountPlan, subs: SubscriberPlan, seed: int, policy: Policy):
        self.accounts, self.subs, self.policy = accounts, subs, policy
        self.tl = accounts.tl
        self.r = random.Random(f"{seed}-requests")
        self.strangers = 0

    # --- who asks ------------------------------------------------------------------------

    def subject(
        self, received: date, kind: str | None = None
    ) -> tuple[str, str | None, int | None]:
        kind = kind or self.r.choices(("owner", "subscriber", "stranger"), (0.65, 0.1, 0.25))[0]
        if kind == "owner":
            for _ in range(20):
                i = self.r.randrange(self.accounts.n)
                if self.accounts.tl.date(self.accounts.created_day[i]) <= received:
                    idx = np.array([i])
                    email = str(np.strings.lower(self.accounts.emails(idx, as_typed=False))[0])
                    if self.r.random() < 0.2:
                        email = email.title()
                    name = str(self.accounts.full_names(idx)[0]) if self.r.random() < 0.85 else None
                    account_id = int(self.accounts.ids[i]) if self.r.random() < 0.5 else None
                    return email, name, account_id
        if kind == "subscriber":
            own = np.flatnonzero(self.subs.account < 0)
            if len(own):
                s = np.array([own[self.r.randrange(len(own))]])
                names = self.subs.full_names(s)
                return str(self.subs.emails(s)[0]), names[0], None
        return self.stranger()

    def stranger(self) -> tuple[str, str | None, int | None]:
        """Someone who is in no other table (e.g. whose data was erased already)."""
        pools = self.accounts.pools
        self.strangers += 1
        f, last = self.r.randrange(len(pools.first)), self.r.randrange(len(pools.last))
        domain = PERSONAL_DOMAINS[self.r.randrange(len(PERSONAL_DOMAINS))]
        email = f"{pools.first_ascii[f]}-{pools.last_ascii[last]}{self.strangers}@{domain}"
        return email, f"{pools.first[f]} {pools.last[last]}", None

    # --- what happened -------------------------------------------------------------------

    def request(
        self, received_at: datetime, request_type: str, status: str, *, subject=None, **history
    ) -> PlannedRequest:
        received = oslo_date(received_at)  # R1: the Oslo day it arrived
        if subject is None:
            kind = "stranger" if (status == "completed" and request_type == "erasure") else None
            subject = self.subject(received, kind)
        email, name, account_id = subject
        details = self.r.choice(REQUEST_DETAILS[request_type]) if self.r.random() < 0.9 else None
        channel = self.r.choices(CHANNELS, (0.25, 0.6, 0.15))[0]
        request = PlannedRequest(
            received_at, request_type, channel, email, name, account_id, details, status
        )
        if status != "received":
            self._history(request, **history)
        return request

    def _history(
        self,
        req: PlannedRequest,
        *,
        identity: str | None = None,
        asked_after: int | None = None,
        confirm_after: int | None = None,
        notified_after: int | None = None,
    ) -> None:
        r, policy = self.r, self.policy
        received = oslo_date(req.received_at)
        latest = self.tl.as_of - timedelta(days=1)
        case = {
            "status": req.status,
            "identity_requested_on": None,
            "identity_confirmed_on": None,
            "identity_method": None,
            "extended": False,
            "extension_reason": None,
            "extension_notified_on": None,
            "closed_on": None,
            "outcome_note": None,
        }
        events: list[tuple[date, str, dict]] = []
        if identity is None:
            choices = {
                "awaiting_identity": ("ask_open",),
                "in_progress": ("ask", "direct"),
                "extended": ("ask", "direct"),
            }.get(req.status, ("ask", "direct", "none"))
            identity = r.choice(choices)
        cursor = received
        paused = 0
        if identity.startswith("ask"):
            window = policy.identity_pause_window_days
            asked = min(
                received
                + timedelta(days=asked_after if asked_after is not None else r.randint(0, window)),
                latest,
            )
            case["identity_requested_on"] = cursor = asked
            events.append((asked, "identity_requested", {}))
            if identity == "ask":
                gap = confirm_after if confirm_after is not None else r.randint(1, 7)
                confirmed = min(asked + timedelta(days=gap), latest)
                method = r.choice(IDENTITY_METHODS)
                case.update(identity_confirmed_on=confirmed, identity_method=method)
                events.append((confirmed, "identity_confirmed", {"method": method}))
                cursor = confirmed
                if (asked - received).days <= window:
                    paused = (confirmed - asked).days
        elif identity == "direct":
            confirmed = min(received + timedelta(days=r.randint(0, 3)), latest)
            method = r.choice(IDENTITY_METHODS[:2])
            case.update(identity_confirmed_on=confirmed, identity_method=method)
            events.append((confirmed, "identity_confirmed", {"method": method}))
            cursor = confirmed
        base_due = rules.dsr_due_date(
            received,
            paused_days=paused,
            months=policy.dsr_months,
            extension_months=policy.dsr_extension_months,
        )
        extend = req.status == "extended" or (
            req.status == "completed" and r.random() < 0.05 and (latest - received).days > 40
        )
        if extend:
            offset = notified_after if notified_after is not None else r.randint(5, 25)
            notified = max(cursor, min(received + timedelta(days=offset), base_due, latest))
            reason = r.choice(EXTENSION_REASONS)
            case.update(extended=True, extension_reason=reason, extension_notified_on=notified)
            events.append((notified, "extended", {"reason": reason, "notified_on": notified}))
            cursor = notified
        if req.status in ("completed", "refused", "withdrawn"):
            self._close(req, case, events, cursor, base_due)
        elif req.request_type in TASK_TYPES and r.random() < 0.5:
            # The DPO tried to complete it: R11 tasks exist, some still open.
            for name in _TASK_RECIPIENTS:
                sent = r.random() < 0.4
                req.tasks.append((name, "sent" if sent else "open", None, cursor if sent else None))
        req.case, req.events = case, events

    def _close(
        self, req: PlannedRequest, case: dict, events: list, cursor: date, base_due: date
    ) -> None:
        """Close a case: mostly within the deadline, 3 % of completions late."""
        r = self.r
        received = oslo_date(req.received_at)
        latest = self.tl.as_of - timedelta(days=1)
        late = req.status == "completed" and r.random() < 0.03
        close_after = (
            r.randint(32, 45) if late else r.randint(2, max(2, (base_due - received).days - 2))
        )
        closed = min(max(cursor, received + timedelta(days=close_after)), latest)
        if req.status == "completed":
            note = OUTCOMES[req.request_type]
            if req.request_type in TASK_TYPES:
                for name in _TASK_RECIPIENTS:
                    if name in _PSEUDONYMOUS and r.random() < 0.5:
                        req.tasks.append((name, "not_possible", NOT_POSSIBLE, closed))
                    else:
                        req.tasks.append((name, "sent", None, closed))
        elif req.status == "refused":
            note = r.choice(REFUSAL_REASONS)
        else:
            note = "The data subject withdrew the request."
        case.update(closed_on=closed, outcome_note=note)
        events.append((closed, req.status, {"note": note}))


_TASK_RECIPIENTS = (
    "US payment processor",
    "Google Analytics",
    "Facebook Pixel",
    "Website provider",
)
_PSEUDONYMOUS = ("Google Analytics", "Facebook Pixel")


def plan_requests(
    accounts: AccountPlan, subs: SubscriberPlan, scale: Scale, seed: int, policy: Policy
) -> list[PlannedRequest]:
    """Every data-subject request with its case history, in received order (ids 1..n)."""
    planner = _RequestPlanner(accounts, subs, seed, policy)
    planned = []
    repeats = max(1, scale.requests // 1000)
    for repeat in range(repeats):
        planned += _scenarios(planner, repeat)
    planned += _random_requests(planner, max(0, scale.requests - len(planned)), seed)
    planned.sort(key=lambda p: p.received_at)
    for number, request in enumerate(planned, start=1):
        request.id = number
    return planned


def _at(d: date, r: random.Random) -> datetime:
    return datetime.combine(d, time(r.randint(5, 19), r.randint(0, 59), r.randint(0, 59)))


def _scenarios(p: _RequestPlanner, repeat: int) -> list[PlannedRequest]:
    """The requests every demo must show (RULES.md R1-R8), shifted a little per repeat."""
    tl, policy, r = p.tl, p.policy, p.r
    as_of = tl.as_of
    jitter = repeat % 3
    months = {"months": policy.dsr_months, "extension_months": policy.dsr_extension_months}

    def ago(days: int) -> date:
        return as_of - timedelta(days=days + jitter)

    def due_within(low: int, high: int, skip: int = 0) -> date:
        """The latest receipt day whose (unpaused) deadline is `low`..`high` days ahead."""
        found = []
        for back in range(1, 120):
            received = as_of - timedelta(days=back)
            left = (rules.dsr_due_date(received, **months) - as_of).days
            if low <= left <= high:
                found.append(received)
        return found[min(skip + repeat, len(found) - 1)]

    types = list(REQUEST_TYPES[repeat % 7 :] + REQUEST_TYPES[: repeat % 7])

    def t(k: int) -> str:
        """Rotate the request types through the scenarios."""
        return types[k % 7]

    repeat_subject = p.subject(ago(9), "owner")
    specs = [
        (ago(1), t(0), "received", {}),
        (ago(2), "erasure", "received", {}),
        (ago(40), t(2), "received", {}),  # forgotten phone intake: overdue without a case
        (ago(6), t(3), "awaiting_identity", {"asked_after": 1}),
        (ago(15), t(4), "awaiting_identity", {"asked_after": 0}),
        (due_within(1, 4), t(5), "in_progress", {"identity": "direct"}),
        (due_within(0, 4, skip=1), t(6), "in_progress", {"identity": "direct"}),
        (ago(45), t(0), "in_progress", {"identity": "direct"}),
        (ago(37), t(1), "in_progress", {"identity": "direct"}),
        (ago(50), t(2), "extended", {"notified_after": 20}),
        (ago(25), t(3), "extended", {"notified_after": 10}),
        (ago(20), t(4), "in_progress", {"identity": "ask", "asked_after": 1, "confirm_after": 5}),
        (ago(3), "access", "in_progress", {"identity": "direct", "subject": repeat_subject}),
        (ago(9), "access", "in_progress", {"identity": "direct", "subject": repeat_subject}),
        (ago(430), "access", "completed", {"subject": repeat_subject}),
    ]
    out = [p.request(_at(d, r), kind, status, **extra) for d, kind, status, extra in specs]
    # R1: received 23:15 UTC on the last day of a month is the next day in Oslo.
    month_end = rules.add_months(date(as_of.year, as_of.month, 1), -(2 + jitter)) - timedelta(
        days=1
    )
    late = datetime.combine(month_end, time(23, 15))
    out.append(p.request(late, "access", "completed"))
    return out


def _random_requests(p: _RequestPlanner, n: int, seed: int) -> list[PlannedRequest]:
    """Requests over the last two years: old ones closed, recent ones in every state."""
    tl, r = p.tl, p.r
    days = growth_days(stream(seed, "request_days"), n, tl.today - 730, tl.last, power=1.3)
    out = []
    for day in days.tolist():
        received = tl.date(day)
        age = (tl.as_of - received).days
        kind = r.choices(REQUEST_TYPES, (0.3, 0.1, 0.25, 0.05, 0.1, 0.08, 0.12))[0]
        closed_share = 1.0 if age > 60 else min(0.9, max(0.0, (age - 3) / 40))
        if r.random() < closed_share:
            status = r.choices(("completed", "refused", "withdrawn"), (0.82, 0.08, 0.1))[0]
        elif age <= 3 and r.random() < 0.6:
            status = "received"
        elif age <= 25 and r.random() < 0.2:
            status = "awaiting_identity"
        elif age >= 12 and r.random() < 0.15:
            status = "extended"
        else:
            status = "in_progress"
        out.append(p.request(_at(received, r), kind, status))
    return out


def request_intake(planned: list[PlannedRequest]) -> dict:
    """`data_subject_requests` rows of the plan (one batch)."""
    return {
        "id": np.array([p.id for p in planned], dtype=np.int64),
        "received_at": np.array([p.received_at for p in planned], dtype="datetime64[s]"),
        "channel": np.array([p.channel for p in planned], dtype=object),
        "request_type": np.array([p.request_type for p in planned], dtype=object),
        "subject_email": np.array([p.email for p in planned], dtype=object),
        "subject_name": np.array([p.name for p in planned], dtype=object),
        "account_id": np.array([p.account_id for p in planned], dtype=object),
        "details": np.array([p.details for p in planned], dtype=object),
    }
