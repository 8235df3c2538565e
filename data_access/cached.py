"""Streamlit caches in front of the data functions: the only data_access module that imports
streamlit, and it holds no SQL (DESIGN.md "Layers").

`databases()` is one `Databases` per process (`st.cache_resource`); every read function has a
`st.cache_data` wrapper with a TTL of `TTL_SECONDS`, keyed by its arguments, so a rerun does
not query again and a changed filter does. Wrappers take only hashable arguments (dates,
ints, strings, tuples) and fetch the `Databases` themselves.

Each wrapper declares the stores it reads with `@reads(...)` (data_access/stores.py: a
database or "database.table"). After an action, `clear_stores(written)` clears every wrapper
that reads a store the action wrote (pages run actions through `pages/_actions.run`, which
does this with the action's `@writes` declaration).

Settings come from `CONFIG_PATH` (config.toml beside the code, or the file `DPO_CONFIG`
names) with database URLs from the environment variables it names; tests set those
variables, or point `CONFIG_PATH` elsewhere, and clear the caches between runs.

A capped frame from a read function here notes how to read it again (`.attrs["source"]`), so
an export can hold every matching row: `full_reader(frame)` (DESIGN.md "Exports").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from data_access import (
    audit,
    breaches,
    consent,
    consent_rollup,
    health,
    holds,
    inspection,
    jobs,
    mailer,
    register,
    requests,
    retention,
    stores,
    subjects,
)
from data_access import daily as daily_run
from data_access import erasure_preview as erasure_preview_of
from data_access import findings as policy_checks
from data_access.daily import acks as radar_acks
from data_access.daily import nightly
from data_access.daily import schedule as retention_plan
from data_access.engines import Databases, DatabaseUnavailable, migrate_ledger
from data_access.requests import duplicates as request_duplicates
from data_access.settings import Settings, config_path, load_settings

TTL_SECONDS = 60
CONFIG_PATH = config_path()

# What each cached wrapper reads: its name -> stores (filled by @reads).
READERS: dict[str, frozenset[str]] = {}
# The tables that decide an account's R13 stage: accounts, members, notices, holds.
_ACCOUNTS_HELD = ("users.accounts", "users.account_members", "ledger.legal_holds")
_ACCOUNT_STAGES = (*_ACCOUNTS_HELD, "ledger.notices")
# The ledger tables the policy-versus-reality findings read besides the source databases.
_LEDGER_FACTS = (
    *stores.HOLDS,
    *stores.OUTBOX,
    *stores.REGISTER,
    *stores.REQUEST_LEDGER,
    *stores.BREACHES,
)

F = TypeVar("F", bound=Callable)


def reads(*names: str) -> Callable[[F], F]:
    """Decorator (outside `st.cache_data`): the wrapper reads these stores, so an action
    that writes one of them clears it (`clear_stores`). ValueError for a name that is no
    store or for no name at all."""
    declared = stores.checked(names)

    def register(function: F) -> F:
        READERS[function.__name__] = declared
        return function

    return register


# --- resources ---------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    """The settings read from `CONFIG_PATH`. Raises SettingsError when config.toml is malformed
    (not cached, so a fixed file is read on the next run)."""
    return load_settings(CONFIG_PATH)


@st.cache_resource(show_spinner=False)
def databases() -> Databases:
    """The four databases of `settings()`. Raises SettingsError or PseudonymKeyMissing
    (a pseudonym key is required outside demo mode, RULES.md R18)."""
    return Databases.from_settings(settings())


@st.cache_resource(show_spinner="Migrating the ledger to the current schema…")
def migrated_ledger() -> bool:
    """Migrate the ledger to the newest Alembic revision once per process, under the
    migration lock (`engines.migrate_ledger`), so a fresh ledger URL starts with every table.
    Raises DatabaseUnavailable or SQLAlchemy/Alembic errors; a failure is not cached, so the
    next run tries again."""
    migrate_ledger(databases().ledger)
    return True


# --- health ------------------------------------------------------------------------------


@reads(*stores.DATABASES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def health_problems() -> list:
    """`health.check`: one Problem(store, table, column, message) per broken contract or
    unreachable database; an empty list when all four are usable."""
    return health.check(databases())


@reads(*stores.DATABASES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def health_summary() -> pd.DataFrame:
    """`health.summary`: one row per database (see its docstring for the columns)."""
    return health.summary(databases())


# --- retention (RULES.md R13–R16) --------------------------------------------------------


@reads(*_ACCOUNT_STAGES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def accounts_nearing_deletion(
    as_of: date, within_days: int, stages: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """`retention.accounts_nearing_deletion`, capped at policy.max_rows (RULES.md R13)."""
    chosen = list(stages) if stages else None
    frame = retention.accounts_nearing_deletion(databases(), as_of, within_days, stages=chosen)
    return _with_source(
        frame, retention.accounts_nearing_deletion, as_of, within_days, stages=chosen
    )


@reads(*_ACCOUNT_STAGES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def stage_counts(as_of: date, within_days: int) -> dict[str, int]:
    """`retention.stage_counts`: accounts nearing deletion per R13 stage."""
    return retention.stage_counts(databases(), as_of, within_days)


@reads("support.contacts", *_ACCOUNTS_HELD)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def support_contacts_past_retention(as_of: date, channel: str | None = None) -> pd.DataFrame:
    """`retention.support_contacts_past_retention`, capped (RULES.md R16)."""
    frame = retention.support_contacts_past_retention(databases(), as_of, channel=channel)
    return _with_source(frame, retention.support_contacts_past_retention, as_of, channel=channel)


@reads("support.contacts")
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def count_support_contacts_past_retention(as_of: date) -> int:
    """`retention.count_support_contacts_past_retention` (RULES.md R16)."""
    return retention.count_support_contacts_past_retention(databases(), as_of)


@reads("users.invoices", *_ACCOUNTS_HELD)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def invoices_past_retention(as_of: date) -> pd.DataFrame:
    """`retention.invoices_past_retention`, capped (RULES.md R15)."""
    frame = retention.invoices_past_retention(databases(), as_of)
    return _with_source(frame, retention.invoices_past_retention, as_of)


@reads("users.invoices")
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def count_invoices_past_retention(as_of: date) -> int:
    """`retention.count_invoices_past_retention` (RULES.md R15)."""
    return retention.count_invoices_past_retention(databases(), as_of)


# --- legal holds (RULES.md R17) ----------------------------------------------------------


@reads(*stores.HOLDS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def active_holds(as_of: date) -> pd.DataFrame:
    """`holds.active_holds` on `as_of`."""
    return holds.active_holds(databases(), as_of)


@reads(*stores.HOLDS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def holds_past_review(as_of: date) -> int:
    """`holds.holds_past_review`: active holds whose review date is before `as_of`."""
    return holds.holds_past_review(databases(), as_of)


@reads(*stores.HOLDS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def all_holds(as_of: date) -> pd.DataFrame:
    """`holds.all_holds` on `as_of`: every hold, released ones included (RULES.md R17)."""
    return holds.all_holds(databases(), as_of)


@reads(*stores.HOLDS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def blocked_attempts() -> pd.DataFrame:
    """`holds.blocked_attempts`: attempts a legal hold blocked, newest first (R17)."""
    return holds.blocked_attempts(databases())


# --- retention actions: plans, resumable jobs, the outbox (RULES.md R13–R17) -------------


@reads(*stores.OUTBOX)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False, max_entries=20)
def undelivered_notices(account_ids: tuple[int, ...]) -> pd.DataFrame:
    """`retention.undelivered_notices`: accounts whose latest notice was not delivered."""
    return retention.undelivered_notices(databases(), account_ids)


@reads("users", "consent.consent_events", "support.contacts", *_ACCOUNT_STAGES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False, max_entries=20)
def deletion_plan(account_ids: tuple[int, ...], as_of: date) -> pd.DataFrame:
    """`retention.deletion_plan`: what deleting these accounts deletes and keeps (R14)."""
    return retention.deletion_plan(databases(), account_ids, as_of)


@reads(*stores.JOBS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def unfinished_jobs(kind: str) -> pd.DataFrame:
    """`jobs.unfinished_jobs` of one kind ('account_deletion', 'support_purge', ...)."""
    return jobs.unfinished_jobs(databases(), kind)


@reads(*stores.JOBS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def failed_steps(job_id: int) -> pd.DataFrame:
    """`jobs.job_steps_frame` of one job, its failed steps only (target, store, error)."""
    return jobs.job_steps_frame(databases(), job_id, status="failed")


@reads(*stores.OUTBOX)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def outbox_messages() -> pd.DataFrame:
    """`mailer.outbox_messages`, newest first, capped at policy.max_rows."""
    return mailer.outbox_messages(databases())


@reads(*stores.OUTBOX)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def outbox_counts() -> dict[str, int]:
    """`mailer.outbox_counts`: messages pending, sent and failed."""
    return mailer.outbox_counts(databases())


# --- data-subject requests (RULES.md R1–R8) ----------------------------------------------


@reads(*stores.REQUESTS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def open_requests(
    as_of: date,
    request_type: str | None = None,
    status: str | None = None,
    due_within_days: int | None = None,
) -> pd.DataFrame:
    """`requests.open_requests` with the page's filters, capped."""
    filters = {"request_type": request_type, "status": status, "due_within_days": due_within_days}
    frame = requests.open_requests(databases(), as_of, **filters)
    return _with_source(frame, requests.open_requests, as_of, **filters)


@reads(*stores.REQUESTS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def request_counts(as_of: date) -> dict[str, int]:
    """`requests.request_counts`: open, awaiting_identity, due_this_week, overdue."""
    return requests.request_counts(databases(), as_of)


@reads(*stores.REQUESTS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def duplicate_blocker(request_id: int) -> str | None:
    """`requests.duplicates.duplicate_blocker`: why an unchecked duplicate may not be
    answered yet, or None."""
    return request_duplicates.duplicate_blocker(databases(), request_id)


@reads(*stores.REQUESTS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def request_detail(request_id: int, as_of: date) -> dict:
    """`requests.request`: one request with its case, deadline and events (KeyError when the
    intake has no such id)."""
    return requests.request(databases(), request_id, as_of=as_of)


@reads("ledger.erasure_receipts", *stores.JOBS, *stores.AUDIT)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def erasure_receipt(request_id: int):
    """`requests.erasure_receipt`: the request's latest erasure receipt, or None."""
    return requests.erasure_receipt(databases(), request_id)


@reads(*stores.REQUESTS, *stores.JOBS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def unfinished_erasure(request_id: int) -> dict | None:
    """`requests.unfinished_erasure`: the request's erasure job if it did not finish."""
    return requests.unfinished_erasure(databases(), request_id)


@reads(*stores.REQUESTS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def recipient_tasks(request_id: int) -> pd.DataFrame:
    """`requests.recipient_tasks` of one request (RULES.md R11)."""
    return requests.recipient_tasks(databases(), request_id)


@reads(*stores.REQUESTS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def previous_request_on(request_id: int) -> date | None:
    """`requests.previous_request_on`: the same person's previous request of the type (R7)."""
    return requests.previous_request_on(databases(), request_id)


@reads(*stores.REQUESTS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def closure_metrics(start: date, end: date) -> pd.DataFrame:
    """`requests.closure_metrics`: answered, on time and days to close per month."""
    return requests.closure_metrics(databases(), start, end)


@reads(*stores.REQUESTS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def open_by_type(as_of: date) -> pd.DataFrame:
    """`requests.open_by_type`: open requests per type and status."""
    return requests.open_by_type(databases(), as_of)


# --- consent (RULES.md R20–R22) ----------------------------------------------------------


@reads("consent", *stores.CONSENT_ROLLUP)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def consent_rates(as_of: date) -> pd.DataFrame:
    """`consent.consent_rates` on `as_of` (RULES.md R21)."""
    return consent.consent_rates(databases(), as_of)


@reads("consent", *stores.CONSENT_ROLLUP)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def consent_trend(start: date, end: date) -> pd.DataFrame:
    """`consent.consent_trend` per month from `start` to `end`."""
    return consent.consent_trend(databases(), start, end)


@reads("consent", *stores.CONSENT_ROLLUP)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def withdrawals(start: date, end: date) -> pd.DataFrame:
    """`consent.withdrawals` from `start` to `end` per purpose, source and notice version."""
    return consent.withdrawals(databases(), start, end)


@reads("consent", *stores.CONSENT_ROLLUP)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def consent_breakdown(as_of: date, by: str) -> pd.DataFrame:
    """`consent.breakdown` on `as_of` by 'source' or 'notice_version' (RULES.md R21)."""
    return consent.breakdown(databases(), as_of, by=by)


@reads("consent", "users.usage_sessions")
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def processing_without_consent(as_of: date) -> dict[str, pd.DataFrame]:
    """`consent.processing_without_consent` on `as_of`, capped (RULES.md R22)."""
    return consent.processing_without_consent(databases(), as_of)


def refresh_consent_rollup(progress=None):
    """Not cached: `consent_rollup.refresh` (new consent events into the ledger's roll-up,
    with `progress(fraction, message)` for a first build), clearing the cached consent
    figures when it changed anything. Returns its `Refreshed`."""
    refreshed = consent_rollup.refresh(databases(), progress=progress)
    if refreshed.applied or refreshed.rebuilt:
        clear_stores(stores.written_by(consent_rollup.refresh))
    return refreshed


def consent_rollup_status() -> dict:
    """Not cached: `consent_rollup.status` (watermark, awaited ids, times)."""
    return consent_rollup.status(databases())


# --- register (RULES.md R24, R30–R32) ----------------------------------------------------


@reads(*stores.REGISTER)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def processing_activities() -> pd.DataFrame:
    """`register.processing_activities` (RULES.md R30)."""
    return register.processing_activities(databases())


@reads(*stores.REGISTER)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def recipients() -> pd.DataFrame:
    """`register.recipients` (RULES.md R31)."""
    return register.recipients(databases())


@reads(*stores.REGISTER)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def cookies() -> pd.DataFrame:
    """`register.cookies` (RULES.md R24)."""
    return register.cookies(databases())


@reads(*stores.REGISTER)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def findings(as_of: date) -> pd.DataFrame:
    """`register.findings` on `as_of` (RULES.md R32)."""
    return register.findings(databases(), as_of)


@reads(*stores.REGISTER)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def findings_count(as_of: date) -> dict[str, int]:
    """`register.findings_count`: findings per severity on `as_of`."""
    return register.findings_count(databases(), as_of)


@reads("users", "consent", "support", *_LEDGER_FACTS)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def policy_findings(as_of: date) -> pd.DataFrame:
    """`findings.policy_findings`: the policy's promises checked against the data."""
    return policy_checks.policy_findings(databases(), as_of)


# --- breaches (RULES.md R50-R53) ---------------------------------------------------------


@reads(*stores.BREACHES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def breach_list(as_of: date, status: str | None = None) -> pd.DataFrame:
    """`breaches.breach_list`: every breach logged by `as_of`, with its clock."""
    return breaches.breach_list(databases(), as_of, status=status)


@reads(*stores.BREACHES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def open_breaches(as_of: date) -> pd.DataFrame:
    """`breaches.open_breaches`: breaches not closed, soonest deadline first."""
    return breaches.open_breaches(databases(), as_of)


@reads(*stores.BREACHES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def breach_counts(as_of: date) -> dict[str, int]:
    """`breaches.breach_counts`: open, clock running, overdue, undecided."""
    return breaches.breach_counts(databases(), as_of)


@reads(*stores.BREACHES, *stores.REGISTER)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def breach_detail(breach_id: int, as_of: date) -> dict:
    """`breaches.breach_detail`; raises KeyError for an unknown id."""
    return breaches.breach_detail(databases(), breach_id, as_of)


@reads(*stores.BREACHES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def breach_events(breach_id: int) -> pd.DataFrame:
    """`breaches.breach_events_frame`: the breach's timeline, oldest first."""
    return breaches.breach_events_frame(databases(), breach_id)


@reads(*stores.REGISTER)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def breach_register_choices() -> dict:
    """`breaches.register_choices`: activities, recipients, processors, data categories."""
    return breaches.register_choices(databases())


# --- look-up and audit -------------------------------------------------------------------


@reads(*stores.DATABASES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False, max_entries=50)
def find_subject(email: str) -> dict[str, pd.DataFrame]:
    """`subjects.find_subject`: "store.table" -> that person's rows."""
    return subjects.find_subject(databases(), email)


@reads(*stores.DATABASES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False, max_entries=20)
def erasure_preview(email: str, as_of: date) -> erasure_preview_of.ErasurePreview:
    """`erasure_preview.erasure_preview`: what an erasure would do, per store, with counts."""
    return erasure_preview_of.erasure_preview(databases(), email, as_of=as_of)


@reads(*stores.AUDIT)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def audit_entries(
    limit: int | None = None,
    action: str | None = None,
    text: str | None = None,
    since: date | None = None,
    until: date | None = None,
    actor: str | None = None,
    subject_email: str | None = None,
) -> pd.DataFrame:
    """`audit.audit_entries`, newest first, filtered in SQL (see its docstring)."""
    return audit.audit_entries(
        databases(),
        limit=limit,
        action=action,
        text=text,
        since=since,
        until=until,
        actor=actor,
        subject_email=subject_email,
    )


@reads(*stores.AUDIT)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def chain_status() -> audit.ChainReport:
    """`audit.verify_chain`: (intact, id of the first broken entry), with the findings in
    words and the latest anchor."""
    return audit.verify_chain(databases())


# --- full exports of capped tables (DESIGN.md "Exports") ---------------------------------


def _full_readers() -> dict[str, Callable[..., pd.DataFrame]]:
    """The capped read functions a frame may name as its source; each takes `limit=`."""
    functions = (
        retention.accounts_nearing_deletion,
        retention.support_contacts_past_retention,
        retention.invoices_past_retention,
        requests.open_requests,
    )
    return {function.__name__: function for function in functions}


def _with_source(frame: pd.DataFrame, function: Callable[..., Any], *args, **kwargs):
    """Note on `frame` how to read it again with another row limit: the read function's
    name, its arguments after the Databases, and the row count, so a frame the page filtered
    afterwards is not mistaken for this one. Kept JSON-safe (dates as {"date": iso}) because
    st.dataframe serialises a frame's attrs with it."""
    frame.attrs["source"] = {
        "function": function.__name__,
        "args": [_json_safe(a) for a in args],
        "kwargs": {k: _json_safe(v) for k, v in kwargs.items()},
        "rows": len(frame),
    }
    return frame


def _json_safe(value: Any) -> Any:
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if isinstance(value, tuple | list):
        return [_json_safe(v) for v in value]
    return value


def _from_json_safe(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"date"}:
        return date.fromisoformat(value["date"])
    if isinstance(value, list):
        return [_from_json_safe(v) for v in value]
    return value


def full_reader(frame: pd.DataFrame) -> Callable[[int], pd.DataFrame] | None:
    """For a frame straight from a capped read function here: a function of a row limit that
    reads the same filtered rows again, uncached, up to that limit. None when the frame has
    no source or has a different number of rows than its source returned (the page changed
    it: such a page passes its own reader to ui.table)."""
    source = frame.attrs.get("source")
    if not isinstance(source, dict) or source.get("rows") != len(frame):
        return None
    function = _full_readers().get(source.get("function"))
    if function is None:
        return None
    args = [_from_json_safe(a) for a in source["args"]]
    kwargs = {k: _from_json_safe(v) for k, v in source["kwargs"].items()}
    return lambda limit: function(databases(), *args, limit=int(limit), **kwargs)


# --- the daily run and the deadline radar ------------------------------------------------


@reads(*stores.DATABASES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def radar(as_of: date, horizon_days: int | None = None) -> pd.DataFrame:
    return daily_run.radar(databases(), as_of, horizon_days=horizon_days)


def automation_alerts(as_of: date) -> pd.DataFrame:
    """Not cached: the banner must leave as soon as a job finishes or an alert is
    acknowledged, whichever page did it (a few small ledger queries)."""
    return daily_run.automation_alerts(databases(), as_of)


@reads(*stores.DAILY)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def daily_runs(limit: int = 30) -> pd.DataFrame:
    return nightly.latest_runs(databases(), limit=limit)


@reads(*stores.DAILY)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def daily_run_steps(run_id: int) -> pd.DataFrame:
    return nightly.run_steps(databases(), run_id)


@reads("ledger.radar_items")
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def radar_item_log() -> pd.DataFrame:
    return radar_acks.radar_item_log(databases())


@reads(*stores.DATABASES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def retention_schedule(as_of: date) -> pd.DataFrame:
    return retention_plan.retention_schedule(databases(), as_of)


# The caches an acknowledgement changes.


# --- errors ------------------------------------------------------------------------------


def is_database_error(exc: BaseException) -> bool:
    """True for what a read raises when a database is down or breaks the contract:
    DatabaseUnavailable or any SQLAlchemy error (this module does not import SQLAlchemy,
    so the error's class hierarchy is checked by module name)."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    return any(cls.__module__ == "sqlalchemy.exc" for cls in type(exc).__mro__)


# --- inspection pack (GDPR art. 5(2), 30, 38(3)) ----------------------------------------


@reads(*stores.DATABASES)
@st.cache_data(ttl=TTL_SECONDS, show_spinner=False)
def inspection_parts(period_start: date, period_end: date, as_of: date) -> list:
    """`inspection.build_parts` for the period: every section of the pack, for the preview.
    Raises ValueError for a bad period (`inspection.context`)."""
    ctx = inspection.context(
        databases(), period_start=period_start, period_end=period_end, as_of=as_of
    )
    return inspection.build_parts(ctx)


# --- clearing ----------------------------------------------------------------------------


def clear(*names: str) -> None:
    """Clear the named cached functions (e.g. after an action), or every data cache when no
    name is given. Raises KeyError for a name this module does not define."""
    if not names:
        st.cache_data.clear()
        return
    for name in names:
        globals()[name].clear()


def clear_stores(written: Iterable[str]) -> list[str]:
    """Clear every cached wrapper that reads a store in `written` (what an action wrote,
    `stores.written_by(action)`). Returns the names cleared, in definition order."""
    written = stores.checked(written)
    cleared = [name for name, read in READERS.items() if stores.any_overlap(read, written)]
    for name in cleared:
        globals()[name].clear()
    return cleared
