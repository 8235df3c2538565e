"""The deadline radar: every dated duty due within the horizon, and everything overdue, in
one list, soonest first (issue "the daily run and the deadline radar").

Each kind of duty comes from a small source function `source(dbs, as_of, horizon_days) ->
list[Item]` in `SOURCES` (the breach register's 72-hour clocks, RULES.md R50, among them);
another area adds its own with `add_source`. The sources call the same query functions the pages
call, so the radar's figures are the pages' own on the same as-of date. A source whose
database cannot be read gives one red item saying so instead of hiding its duties.

Items name data subjects only by request id or count, never by name or e-mail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from data_access import breaches, failures, holds, jobs, register, retention, rules
from data_access.clock import oslo_date, oslo_text
from data_access.engines import Databases, DatabaseUnavailable
from data_access.ledger_tables import daily_run_steps, daily_runs, radar_items
from data_access.requests import queries as request_queries
from data_access.tables import contacts

DEFAULT_HORIZON_DAYS = 14
SEVERITIES = ("red", "amber")
# Pages by the key pages/_ui.py PAGE_FILES uses, and the path Streamlit serves each at (the
# file's name): a link in the digest e-mail needs the path, the pages need the key.
PAGE_PATHS = {
    "overview": "overview",
    "radar": "radar",
    "accounts": "accounts_nearing_deletion",
    "retention": "retention",
    "holds": "legal_holds",
    "requests": "data_subject_requests",
    "request": "request",
    "register": "register",
    "schedule": "retention_schedule",
    "breaches": "breaches",
    "breach": "breach",
}
RADAR_COLUMNS = [
    "due_on",
    "severity",
    "kind",
    "what",
    "item",
    "count",
    "rule",
    "days_left",
    "overdue",
    "page",
    "link",
    "key",
    "acknowledged",
]
# Radar item kinds that are failures of the automation itself.
ALERT_KINDS = ("daily_run_failed", "job_interrupted", "job_partial", "job_pending")
# A red R8 badge: fewer than this many days left.
RED_DAYS = 5


@dataclass
class Item:
    """One dated duty. `due_on` is an Oslo date (the day it falls or fell due); `page` a
    key of PAGE_PATHS; `query` the link's query string ("id=17"); `key` stable across runs
    (acknowledgements and escalations refer to it)."""

    due_on: date
    severity: str  # red | amber
    kind: str
    what: str
    item: str
    count: int
    rule: str
    page: str
    key: str
    query: str = ""
    extra: dict = field(default_factory=dict)


Source = Callable[[Databases, date, int], list[Item]]


def horizon_of(dbs: Databases) -> int:
    """The `[daily] horizon_days` setting (days), DEFAULT_HORIZON_DAYS without settings."""
    return dbs.settings.daily.horizon_days if dbs.settings else DEFAULT_HORIZON_DAYS


def radar(
    dbs: Databases,
    as_of: date,
    days: int | None = None,
    *,
    horizon_days: int | None = None,
) -> pd.DataFrame:
    """Every duty due on or before `as_of + horizon_days` (overdue ones included), soonest
    first, red before amber on the same day.

    `horizon_days` (or `days`; calendar days) defaults to `[daily] horizon_days` (14).
    Columns: due_on (Oslo date), severity ('red' | 'amber'), kind, what, item, count (records
    or requests the item stands for), rule, days_left (due_on - as_of, days), overdue
    (due_on < as_of), page (a pages/_ui.py PAGE_FILES key), link (the page's path and query,
    e.g. "request?id=17"), key (stable id), acknowledged (bool: a DPO acknowledged it).
    Raises ValueError for a negative horizon. Never raises for a store that is down: that
    source gives a red item "cannot be read".
    """
    horizon = horizon_days if horizon_days is not None else days
    horizon = horizon_of(dbs) if horizon is None else int(horizon)
    if horizon < 0:
        raise ValueError(f"horizon_days must be >= 0, got {horizon}")
    found: list[Item] = []
    for source in SOURCES:
        found.extend(_read(source, dbs, as_of, horizon))
    last_day = as_of + timedelta(days=horizon)
    rows = [_row(item, as_of) for item in found if item.due_on <= last_day]
    frame = pd.DataFrame(rows, columns=RADAR_COLUMNS[:-1])
    frame["acknowledged"] = frame["key"].isin(_acknowledged(dbs, list(frame["key"])))
    frame["_rank"] = frame["severity"].map({"red": 0, "amber": 1})
    frame = frame.sort_values(["due_on", "_rank", "kind", "key"], kind="stable")
    return frame.drop(columns="_rank").reset_index(drop=True)[RADAR_COLUMNS]


def automation_alerts(dbs: Databases, as_of: date) -> pd.DataFrame:
    """Unacknowledged failures of the automation: each failed step of the latest daily run
    and each job left interrupted or partial (the red banner every page shows a DPO).
    Columns as `radar`; only the two automation sources are read, so it is cheap."""
    rows = [
        _row(item, as_of)
        for source in (daily_run_problems, job_problems)
        for item in source(dbs, as_of, 0)
        if item.kind in ALERT_KINDS
    ]
    frame = pd.DataFrame(rows, columns=RADAR_COLUMNS[:-1])
    frame["acknowledged"] = frame["key"].isin(_acknowledged(dbs, list(frame["key"])))
    return frame[~frame["acknowledged"]].reset_index(drop=True)[RADAR_COLUMNS]


def add_source(source: Source) -> Source:
    """Add `source` to the radar (once); returns it, so it can decorate the function."""
    if source not in SOURCES:
        SOURCES.append(source)
    return source


def severity_counts(frame: pd.DataFrame) -> dict[str, int]:
    """How many radar items are red and amber: {'red': n, 'amber': n}."""
    return {s: int((frame["severity"] == s).sum()) for s in SEVERITIES}


def _read(source: Source, dbs: Databases, as_of: date, horizon: int) -> list[Item]:
    try:
        return source(dbs, as_of, horizon)
    except (DatabaseUnavailable, SQLAlchemyError) as exc:
        name = source.__name__.strip("_").replace("_", " ")
        return [
            Item(
                as_of,
                "red",
                "unreadable",
                f"Radar source “{name}” cannot be read: {failures.in_words(exc)}",
                name,
                0,
                "",
                "overview",
                f"unreadable:{source.__name__}:{as_of.isoformat()}",
            )
        ]


def _row(item: Item, as_of: date) -> dict:
    row = asdict(item)
    query = row.pop("query")
    row.pop("extra")
    row["days_left"] = (item.due_on - as_of).days
    row["overdue"] = item.due_on < as_of
    row["link"] = PAGE_PATHS[item.page] + (f"?{query}" if query else "")
    return row


def _acknowledged(dbs: Databases, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    query = select(radar_items.c.key).where(radar_items.c.acknowledged_at.is_not(None))
    with dbs.ledger.connect() as conn:
        acked = set(conn.execute(query).scalars())
    return acked & set(keys)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# --- requests (RULES.md R2-R5, R8) ---------------------------------------------------------


def request_deadlines(dbs: Databases, as_of: date, horizon: int) -> list[Item]:
    """Each open request due within the horizon or overdue (R2, R3, R8); the last day to
    notify an extension for one not extended (R4: by the base deadline); each identity
    pause still waiting (R5)."""
    index = request_queries.open_request_index(dbs, as_of)
    items = []
    for row in index.itertuples():
        rid = int(row.request_id)
        if row.status == "awaiting_identity":
            items.append(
                Item(
                    row.due_on,
                    "amber",
                    "identity_waiting",
                    f"Request {rid} ({row.request_type}): identity asked, deadline paused "
                    f"{row.paused_days} day(s)",
                    f"request {rid}",
                    1,
                    "R5",
                    "request",
                    f"identity_waiting:{rid}",
                    query=f"id={rid}",
                )
            )
            continue
        red = bool(row.overdue) or row.days_left < RED_DAYS
        label = "overdue" if row.overdue else "due"
        items.append(
            Item(
                row.due_on,
                "red" if red else "amber",
                "request_due",
                f"Request {rid} ({row.request_type}) {label}"
                + (" (extended)" if row.extended else ""),
                f"request {rid}",
                1,
                "R3" if row.extended else "R2",
                "request",
                f"request_due:{rid}:{row.due_on.isoformat()}",
                query=f"id={rid}",
            )
        )
        if not row.extended and row.due_on >= as_of:
            items.append(
                Item(
                    row.due_on,
                    "red" if row.days_left < RED_DAYS else "amber",
                    "extension_deadline",
                    f"Request {rid}: last day to notify an extension",
                    f"request {rid}",
                    1,
                    "R4",
                    "request",
                    f"extension_deadline:{rid}:{row.due_on.isoformat()}",
                    query=f"id={rid}",
                )
            )
    return items


# --- accounts (RULES.md R13, R14) ----------------------------------------------------------


def account_deadlines(dbs: Databases, as_of: date, horizon: int) -> list[Item]:
    """Inactivity notices due (R13) and deletions ready (R14) now, as the Accounts page
    counts them; notices and deletions falling due within the horizon (amber)."""
    notice_days = dbs.policy.notice_days
    # The window reaches every account whose notice falls due within the horizon.
    within = horizon + notice_days
    counts = retention.stage_counts(dbs, as_of, within)
    frame = retention.accounts_nearing_deletion(
        dbs, as_of, within, stages=["notice_due", "ready", "upcoming", "notified"]
    )
    items = []
    due = frame[frame["stage"] == "notice_due"]
    if counts["notice_due"]:
        late = bool((due["eligible_on"] <= as_of).any())
        first = min(due["eligible_on"]) - timedelta(days=notice_days)
        items.append(
            Item(
                first,
                "red" if late else "amber",
                "notice_due",
                f"{counts['notice_due']} inactivity notice(s) due",
                "accounts",
                counts["notice_due"],
                "R13",
                "accounts",
                f"notice_due:{first.isoformat()}",
            )
        )
    coming = [
        d - timedelta(days=notice_days)
        for d in frame.loc[frame["stage"] == "upcoming", "eligible_on"]
        if d - timedelta(days=notice_days) <= as_of + timedelta(days=horizon)
    ]
    if coming:
        items.append(
            Item(
                min(coming),
                "amber",
                "notice_coming",
                f"{len(coming)} inactivity notice(s) fall due",
                "accounts",
                len(coming),
                "R13",
                "accounts",
                f"notice_coming:{min(coming).isoformat()}",
            )
        )
    ready = frame[frame["stage"] == "ready"]
    if counts["ready"]:
        first = min(ready["deletable_on"])
        items.append(
            Item(
                first,
                "red",
                "deletion_ready",
                f"{counts['ready']} account deletion(s) ready for approval",
                "accounts",
                counts["ready"],
                "R14",
                "accounts",
                f"deletion_ready:{first.isoformat()}",
            )
        )
    notified = [
        d
        for d in frame.loc[frame["stage"] == "notified", "deletable_on"]
        if d <= as_of + timedelta(days=horizon)
    ]
    if notified:
        items.append(
            Item(
                min(notified),
                "amber",
                "deletion_coming",
                f"{len(notified)} notified account(s) become deletable",
                "accounts",
                len(notified),
                "R14",
                "accounts",
                f"deletion_coming:{min(notified).isoformat()}",
            )
        )
    return items


# --- support logs and invoices (RULES.md R15, R16) -----------------------------------------


def support_log_deadlines(dbs: Databases, as_of: date, horizon: int) -> list[Item]:
    """Customer-service logs past retention and not under a legal hold (R16, R17: the
    Retention page's count less its held rows; held rows are counted from the listed ones,
    up to policy.max_rows), and those becoming purgeable within the horizon."""
    items = []
    past = retention.count_support_contacts_past_retention(dbs, as_of)
    listed = retention.support_contacts_past_retention(dbs, as_of)
    due = listed[~listed["on_hold"]]
    held = int(listed["on_hold"].sum())
    if past - held > 0:
        first = due["retained_until"].iloc[0] + timedelta(days=1)
        items.append(
            Item(
                first,
                "red",
                "support_purge",
                f"{past - held} customer-service log(s) past retention, due for purge"
                + (f" ({held} more kept under a legal hold)" if held else ""),
                "support logs",
                past - held,
                "R16",
                "retention",
                f"support_purge:{first.isoformat()}",
            )
        )
    last_day = as_of + timedelta(days=horizon)
    coming = retention.count_support_contacts_past_retention(dbs, last_day + timedelta(1)) - past
    if coming > 0:
        first = next_support_due(dbs, as_of)
        items.append(
            Item(
                first,
                "amber",
                "support_purge_coming",
                f"{coming} customer-service log(s) reach the end of retention",
                "support logs",
                coming,
                "R16",
                "retention",
                f"support_purge_coming:{first.isoformat()}",
            )
        )
    return items


def next_support_due(dbs: Databases, as_of: date) -> date | None:
    """The first day after `as_of` on which another contact becomes purgeable (R16), None
    when no contact is left to become so."""
    query = select(func.min(contacts.c.started_at)).where(
        contacts.c.started_at >= retention.support_started_cutoff(dbs, as_of)
    )
    with dbs.support.connect() as conn:
        started = conn.execute(query).scalar_one()
    if started is None:
        return None
    months = dbs.policy.support_log_months
    return rules.support_contact_retained_until(oslo_date(started), months) + timedelta(days=1)


def invoice_deadlines(dbs: Databases, as_of: date, horizon: int) -> list[Item]:
    """Invoices past bookkeeping retention still holding names and not under a legal hold
    (R15, R17: the Retention page's count less its held rows), and those anonymisable
    within the horizon."""
    items = []
    past = retention.count_invoices_past_retention(dbs, as_of)
    listed = retention.invoices_past_retention(dbs, as_of)
    due = listed[~listed["on_hold"]]
    held = int(listed["on_hold"].sum())
    if past - held > 0:
        first = due["retained_until"].iloc[0] + timedelta(days=1)
        items.append(
            Item(
                first,
                "red",
                "invoice_anonymisation",
                f"{past - held} invoice(s) past bookkeeping retention, due for anonymisation"
                + (f" ({held} more kept under a legal hold)" if held else ""),
                "invoices",
                past - held,
                "R15",
                "retention",
                f"invoice_anonymisation:{first.isoformat()}",
            )
        )
    last_day = as_of + timedelta(days=horizon)
    coming = retention.count_invoices_past_retention(dbs, last_day + timedelta(1)) - past
    if coming > 0:
        policy = dbs.policy
        # Invoices become anonymisable together, the day after a financial year's end.
        cutoff = rules.invoice_issued_cutoff(
            last_day + timedelta(1), policy.invoice_retention_years, policy.fiscal_year_end_md
        )
        first = rules.invoice_retained_until(
            cutoff, policy.invoice_retention_years, policy.fiscal_year_end_md
        ) + timedelta(days=1)
        items.append(
            Item(
                first,
                "amber",
                "invoice_anonymisation_coming",
                f"{coming} invoice(s) reach the end of bookkeeping retention",
                "invoices",
                coming,
                "R15",
                "retention",
                f"invoice_anonymisation_coming:{first.isoformat()}",
            )
        )
    return items


# --- legal holds (RULES.md R17) ------------------------------------------------------------


def hold_reviews(dbs: Databases, as_of: date, horizon: int) -> list[Item]:
    """Each hold in force past its review date (red; `holds.holds_past_review` counts
    them) or reaching it within the horizon (amber)."""
    active = holds.active_holds(dbs, as_of)
    last_day = as_of + timedelta(days=horizon)
    items = []
    for row in active[active["review_on"] <= last_day].itertuples():
        past = bool(row.past_review)
        items.append(
            Item(
                row.review_on,
                "red" if past else "amber",
                "hold_review",
                f"Legal hold {row.id} ({row.case_ref}) "
                + ("past its review date" if past else "due for review"),
                f"hold {row.id}",
                1,
                "R17",
                "holds",
                f"hold_review:{row.id}:{row.review_on.isoformat()}",
            )
        )
    return items


# --- register (RULES.md R31, R32) ----------------------------------------------------------


def register_deadlines(dbs: Databases, as_of: date, horizon: int) -> list[Item]:
    """The register's R32 findings now (red for high severity, else amber), and DPF
    listings and recipient reviews that fall due within the horizon (amber)."""
    items = []
    findings = register.findings(dbs, as_of)
    for row in findings[findings["rule"] == "R32"].itertuples():
        items.append(
            Item(
                as_of,
                "red" if row.severity == "high" else "amber",
                "register_finding",
                f"{row.item}: {row.finding}",
                str(row.item),
                1,
                "R32",
                "register",
                f"register_finding:{_short_hash(f'{row.area}|{row.item}|{row.finding}')}",
            )
        )
    items.extend(_register_coming(dbs, as_of, horizon))
    return items


def _register_coming(dbs: Databases, as_of: date, horizon: int) -> list[Item]:
    policy = dbs.policy
    last_day = as_of + timedelta(days=horizon)
    items = []
    for r in register.recipients(dbs).itertuples():
        if not r.receives_personal_data:
            continue
        mechanism = (r.transfer_mechanism or "").strip().lower()
        if mechanism == "dpf" and isinstance(r.dpf_checked_on, date):
            due = r.dpf_checked_on + timedelta(days=policy.dpf_check_days + 1)
            if as_of < due <= last_day:
                items.append(_recipient_item(r.name, due, "dpf_check", "DPF listing check"))
        if isinstance(r.last_review_on, date):
            due = rules.add_months(r.last_review_on, policy.recipient_review_months)
            if as_of < due <= last_day:
                items.append(_recipient_item(r.name, due, "recipient_review", "review"))
    return items


def _recipient_item(name: str, due: date, kind: str, what: str) -> Item:
    return Item(
        due,
        "amber",
        kind,
        f"{name}: {what} due",
        name,
        1,
        "R32",
        "register",
        f"{kind}:{_short_hash(name)}:{due.isoformat()}",
    )


# --- automation: jobs and the daily run ----------------------------------------------------


def job_problems(dbs: Databases, as_of: date, horizon: int) -> list[Item]:
    """Each job left partial (a store failed) or interrupted (its process is gone): red,
    due at once (DESIGN.md "Actions")."""
    unfinished = jobs.unfinished_jobs(dbs)
    stuck = unfinished[unfinished["status"].isin(("partial", "interrupted"))]
    waiting = jobs.interrupted_jobs(dbs)
    never = waiting[waiting["status"] == "pending"]
    items = []
    for row in pd.concat([stuck, never]).drop_duplicates("job_id").itertuples():
        items.append(
            Item(
                as_of,
                "red",
                "job_" + row.status,
                f"Job {int(row.job_id)} ({row.kind}) is {row.status}: resume it",
                f"job {int(row.job_id)}",
                1,
                "",
                _job_page(row.kind),
                f"job:{int(row.job_id)}:{row.status}",
            )
        )
    return items


def _job_page(kind: str) -> str:
    return {"account_deletion": "accounts", "erasure": "requests"}.get(kind, "retention")


def daily_run_problems(dbs: Databases, as_of: date, horizon: int) -> list[Item]:
    """The daily run: red when it did not run for the day before `as_of` (nor on it),
    amber when it never ran; red for each step of its latest run that failed."""
    with dbs.ledger.connect() as conn:
        last = (
            conn.execute(select(daily_runs).order_by(daily_runs.c.id.desc()).limit(1))
            .mappings()
            .first()
        )
        steps = []
        if last is not None:
            steps = (
                conn.execute(
                    select(daily_run_steps)
                    .where(
                        daily_run_steps.c.run_id == last["id"],
                        daily_run_steps.c.outcome == "failed",
                    )
                    .order_by(daily_run_steps.c.seq)
                )
                .mappings()
                .all()
            )
    if last is None:
        return [
            Item(
                as_of,
                "amber",
                "daily_run_missing",
                "The daily run has never run: schedule `python -m data_access.daily`",
                "daily run",
                0,
                "",
                "radar",
                "daily_run_missing:never",
            )
        ]
    items = []
    if last["as_of"] < as_of - timedelta(days=1):
        missed = last["as_of"] + timedelta(days=1)
        items.append(
            Item(
                missed,
                "red",
                "daily_run_missing",
                f"The daily run did not run since {last['as_of'].isoformat()}",
                "daily run",
                (as_of - last["as_of"]).days - 1,
                "",
                "radar",
                f"daily_run_missing:{missed.isoformat()}",
            )
        )
    for step in steps:
        items.append(
            Item(
                last["as_of"],
                "red",
                "daily_run_failed",
                f"Daily run {last['id']}: step “{step['step']}” failed",
                f"daily run {last['id']}",
                1,
                "",
                "radar",
                f"daily_run_failed:{last['id']}:{step['step']}",
            )
        )
    return items


def breach_clocks(dbs: Databases, as_of: date, horizon: int) -> list[Item]:
    """Each breach whose 72-hour clock runs (RULES.md R50): red when it has run out or has
    under 24 hours left, amber otherwise; due on the Oslo date of its deadline. Named by
    breach id, not by its title (a title may name someone)."""
    items = []
    for row in breaches.radar_items(dbs, as_of).itertuples():
        left = (
            "the 72 hours have run out: notify now, with the reasons for the delay"
            if row.overdue
            else f"{row.hours_left:.0f} h left"
        )
        items.append(
            Item(
                row.due_on,
                "red" if row.overdue or row.hours_left < 24 else "amber",
                "breach_notification",
                f"Breach {int(row.breach_id)}: decide and notify Datatilsynet by "
                f"{oslo_text(row.due_at)} ({left})",
                f"breach {int(row.breach_id)}",
                1,
                "R50",
                "breach",
                f"breach:{int(row.breach_id)}:{row.due_at:%Y%m%d%H%M}",
                query=f"id={int(row.breach_id)}",
            )
        )
    return items


SOURCES: list[Source] = [
    request_deadlines,
    account_deadlines,
    support_log_deadlines,
    invoice_deadlines,
    hold_reviews,
    register_deadlines,
    job_problems,
    daily_run_problems,
    breach_clocks,
]
