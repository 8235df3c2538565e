"""What every page shares: who is signed in and with which role, the header (title, flash
message, database check), the "as of" date, and the one table helper that shows a frame with
its row cap and offers an audited export (CSV for Excel, plain CSV or XLSX) of every matching
row (DESIGN.md "Pages", "Sign-in"; RULES.md R40, R41).

Pages call these and the cached data functions; nothing here builds SQL or commits. The
only write is `audit.record_export`, the data_access action that audits a download.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Any

import pandas as pd
import streamlit as st
from dateutil.relativedelta import relativedelta

from data_access import audit, cached, clock, consent_rollup, export, failures, health
from data_access import prepared as prepared_files
from data_access.settings import Policy, email_key, email_refusal
from pages import _words as words

DEMO_ACTOR = "demo@localhost"
EDIT_KEY_PREFIX = "edit:"  # widgets of edit forms: not kept across pages (keep_widget_values)
# Pages by key, for st.page_link; dashboard.py registers the same files in st.navigation.
PAGE_FILES = {
    "overview": "pages/overview.py",
    "accounts": "pages/accounts_nearing_deletion.py",
    "retention": "pages/retention.py",
    "holds": "pages/legal_holds.py",
    "requests": "pages/data_subject_requests.py",
    "request": "pages/request.py",
    "consent": "pages/consent.py",
    "register": "pages/register.py",
    "breaches": "pages/breaches.py",
    "breach": "pages/breach.py",
    "lookup": "pages/subject_lookup.py",
    "audit": "pages/audit_log.py",
    "inspection": "pages/inspection_pack.py",
    "radar": "pages/radar.py",
    "schedule": "pages/retention_schedule.py",
}
BADGES = {"green": "🟢 green", "amber": "🟠 amber", "red": "🔴 red"}
# Row colours cost about a second per 5,000 rows on every rerun; above this many rows the
# flag columns (badge, overdue, stage) carry the same meaning uncoloured.
STYLED_ROWS_MAX = 1000
_FLASH_KEY = "flash"
# Every ASCII punctuation character may start Markdown (or Streamlit's :colour[] and $math$)
# syntax; a backslash before each makes a data value render as the text it is.
_MARKDOWN_ESCAPES = str.maketrans({c: "\\" + c for c in string.punctuation})


# --- who and when ------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who is using the dashboard (RULES.md R41).

    `email`: the verified e-mail (trimmed, lower-case), demo@localhost in demo mode without
    sign-in, None when there is none. `role`: 'dpo' (may act), 'viewer' (browses and
    exports) or None (no access). `signed_in`: True after OpenID Connect sign-in.
    `problem`: why a signed-in user has no access, in words for that user (Markdown, the
    e-mail in it escaped).
    """

    email: str | None
    role: str | None
    signed_in: bool
    problem: str | None = None


def signin_configured() -> bool:
    """True when .streamlit/secrets.toml has an [auth] section (OpenID Connect sign-in)."""
    return bool(st.secrets.load_if_toml_exists() and st.secrets.get("auth"))


def verified_email(claims: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(e-mail, None) for identity claims with a verified e-mail, else (None, the reason).

    The e-mail is trimmed and lower-cased (`settings.email_key`); one that
    `settings.email_refusal` refuses (a look-alike such as the Kelvin sign) is not accepted.
    When the identity provider sends the `email_verified` claim it must be true (Google
    Workspace and Keycloak send it); a provider that sends no such claim (Entra ID) vouches
    for the addresses it issues.
    """
    email = claims.get("email")
    email = email.strip() if isinstance(email, str) else ""
    if "@" not in email:
        return None, (
            "Your identity provider did not send an e-mail address, so the dashboard cannot "
            "tell who you are. Ask your administrator to release the e-mail claim to it."
        )
    refusal = email_refusal(email)
    if refusal:
        return None, (
            f"The dashboard does not accept the address {escape_markdown(ascii(email))}: "
            f"{refusal}. Sign in with the address as your organisation writes it."
        )
    email = email_key(email)
    verified = claims.get("email_verified", True)
    if verified is not True and str(verified).lower() != "true":
        return None, (
            f"Your identity provider has not verified the e-mail address "
            f"{escape_markdown(email)}; the "
            "dashboard accepts only verified addresses."
        )
    return email, None


def identity() -> Identity:
    """The current user: from sign-in when [auth] is configured, else the demo user in demo
    mode, else nobody (RULES.md R41). Roles come from config.toml [roles]."""
    settings = cached.settings()
    if not signin_configured():
        if settings.demo_mode:
            return Identity(DEMO_ACTOR, "dpo", signed_in=False)
        return Identity(None, None, signed_in=False)
    user = st.user.to_dict()
    if not user.get("is_logged_in"):
        return Identity(None, None, signed_in=False)
    email, problem = verified_email(user)
    if email is None:
        return Identity(None, None, signed_in=True, problem=problem)
    role = settings.roles.role_of(email)
    if role is None:
        problem = (
            f"You are signed in as {escape_markdown(email)}, but that address has no role in "
            "the dashboard. "
            "Ask the DPO to add it to config.toml under [roles] (dpo or viewer)."
        )
    return Identity(email, role, signed_in=True, problem=problem)


def actor() -> str:
    """The e-mail actions and exports are recorded under: the signed-in user's verified
    e-mail, or demo@localhost in demo mode without sign-in (RULES.md R41). Stops the page
    when there is no such user (dashboard.py lets none through)."""
    who = identity()
    if who.email is None or who.role is None:
        st.error("Nobody with a role is signed in; nothing was done.", icon="🛑")
        st.stop()
    return who.email


def today() -> date:
    """Today in Europe/Oslo: the date every action happens on (tests pin
    data_access.clock.today_oslo)."""
    return clock.today_oslo()


# The sensible "as of" days: no record the policy keeps is older than ten years (invoices go
# five years after their financial year), and deadlines are not planned further ahead.
AS_OF_YEARS_BACK = 10
AS_OF_YEARS_AHEAD = 3
# Session key of the last "as of" inside that range, kept while a wrong one is refused.
AS_OF_VALID_KEY = "as_of_valid"


def as_of_range() -> tuple[date, date]:
    """The first and last day "as of" may show (Europe/Oslo): AS_OF_YEARS_BACK years before
    today to AS_OF_YEARS_AHEAD years after it, both inclusive."""
    now = today()
    return now - relativedelta(years=AS_OF_YEARS_BACK), now + relativedelta(years=AS_OF_YEARS_AHEAD)


def as_of_problem(value: Any) -> str | None:
    """Why `value` cannot be the "as of" day, in words for the sidebar, or None when it can."""
    first, last = as_of_range()
    if not isinstance(value, date):
        return "“As of” must be a date."
    if not first <= value <= last:
        return (
            f"“As of” {value.isoformat()} is out of range: choose a day from "
            f"{first.isoformat()} to {last.isoformat()}."
        )
    return None


def keep_valid_as_of() -> str | None:
    """Before the sidebar's date input is drawn: put back the last valid "as of" (else today)
    when the one entered is out of range, and say why; remember a valid one. Returns the
    message for the sidebar, or None."""
    value = st.session_state.get("as_of", today())
    problem = as_of_problem(value)
    if problem:
        st.session_state["as_of"] = st.session_state.get(AS_OF_VALID_KEY, today())
    else:
        st.session_state[AS_OF_VALID_KEY] = value
    return problem


def as_of() -> date:
    """The date the DPO is looking at: the sidebar's "as of" (session key "as_of"), or today
    in Europe/Oslo when the page runs without the sidebar. A day out of `as_of_range` never
    counts: the last valid one (else today) stands in for it."""
    value = st.session_state.get("as_of")
    if as_of_problem(value) is None:
        return value
    valid = st.session_state.get(AS_OF_VALID_KEY)
    return valid if isinstance(valid, date) else today()


def what_if() -> bool:
    """True when the sidebar's "as of" is not today: a read-only view of another day, in
    which no action runs (an action always happens today, checked against today)."""
    return as_of() != today()


def what_if_banner() -> None:
    """Say, at the top of the page, that this is a view of another day without actions."""
    if what_if():
        st.warning(
            f"What-if view as of {as_of().isoformat()}: the figures are as they would stand "
            f"that day. Actions are off; they always happen today ({today().isoformat()}). "
            "Set “As of” back to today in the sidebar to act.",
            icon="🔭",
        )


def automation_banner() -> None:
    """For a DPO, a red banner naming each failed daily-run step and each job left
    interrupted or partial, until a DPO acknowledges it on the Deadline radar. A ledger
    that cannot be read shows no banner here (the pages that need it say so)."""
    if identity().role != "dpo":
        return
    try:
        alerts = cached.automation_alerts(today())
    except Exception as exc:
        if not cached.is_database_error(exc):
            raise
        return
    if alerts.empty:
        return
    listed = "\n".join(f"- {escape_markdown(what)}" for what in alerts["what"])
    st.error(
        f"Automation needs attention ({len(alerts)}):\n\n{listed}\n\nSettle or acknowledge "
        "it on the Deadline radar.",
        icon="🚨",
    )
    st.page_link(PAGE_FILES["radar"], label="Open the Deadline radar", icon="📡")


def keep_widget_values() -> None:
    """Keep filter values when the user moves to another page and back.

    Streamlit forgets a widget's value at the end of a run that did not show the widget.
    Writing each value back to session state at the start of every run makes it the page's
    own state, which is kept. Only plain values are written back (text, numbers, dates,
    lists of them): buttons and download buttons (bool), table selections and editors
    (mappings) and uploads may not be set through session state and are left alone, and so
    are edit forms (keys starting with EDIT_KEY_PREFIX), which show a stored row's values.
    """
    for key in list(st.session_state.keys()):
        value = st.session_state[key]
        if not str(key).startswith(("$$", EDIT_KEY_PREFIX)) and _plain_value(value):
            st.session_state[key] = value


def _plain_value(value: Any) -> bool:
    scalars = (str, int, float, date, time)
    if isinstance(value, bool):
        return False
    if isinstance(value, list | tuple):
        return all(isinstance(v, scalars) and not isinstance(v, bool) for v in value)
    return isinstance(value, scalars)


def policy() -> Policy:
    """The policy numbers in force (months, days, years as their names say)."""
    return cached.databases().policy


def escape_markdown(text: Any) -> str:
    """`text` as literal text inside st.markdown/st.info/st.caption messages: every
    Markdown character escaped, so a data value never becomes a link, image or formatting."""
    return str(text).translate(_MARKDOWN_ESCAPES)


# --- header: title, flash message, databases ---------------------------------------------


def page_header(title: str, *, stores: Iterable[str] = (), caption: str | None = None) -> None:
    """Title, then the flash message left by the last action, then stop with st.error if a
    database in `stores` is unavailable or breaks the contract (pages that do not need it
    keep working)."""
    st.title(title)
    if caption:
        st.caption(caption)
    show_flash()
    if not stores_available(stores):
        st.stop()


def flash(message: str, kind: str = "success") -> None:
    """Keep a message for the next run (after an action's st.rerun); kind: success|info|warning|error."""
    st.session_state[_FLASH_KEY] = (kind, message)


def show_flash() -> None:
    """Show and forget the flash message, if any."""
    kind, message = st.session_state.pop(_FLASH_KEY, (None, None))
    if message:
        getattr(st, kind, st.info)(message)


def describe_problem(problem: Any) -> str:
    """One health.Problem(store, table, column, message) as a sentence that names the
    database (and the table and column when the message does not already)."""
    message = str(problem.message)
    if f"{problem.store} database" in message or f"{problem.store} table" in message:
        return message
    where = f"The {problem.store} database"
    if problem.table:
        where += f", table {problem.table}"
    if problem.column:
        where += f", column {problem.column}"
    return f"{where}: {message}"


def store_problems(stores: Iterable[str] | None = None) -> list:
    """Health problems of `stores` (every store when None), from the cached health check."""
    problems = cached.health_problems()
    if stores is None:
        return list(problems)
    wanted = set(stores)
    return [p for p in problems if p.store in wanted]


def stores_available(stores: Iterable[str]) -> bool:
    """True when every store in `stores` passes the health check; otherwise show st.error
    naming each broken database, table and column, and return False. A missing index does
    not count: the store works, slowly (see `waits_for_indexes`)."""
    problems = [p for p in store_problems(stores) if p.kind != "index"] if stores else []
    for problem in problems:
        st.error(describe_problem(problem), icon="🛑")
    return not problems


def missing_indexes(rules: tuple[str, ...] | None = None) -> list:
    """The health check's missing-index problems (those needed by one of `rules` when given)."""
    return health.missing_indexes(store_problems(), rules)


def waits_for_indexes(rules: tuple[str, ...], key: str) -> bool:
    """True when a query of `rules` (e.g. ('R13',)) would run without an index it needs: a
    warning names each missing index with what is slow, and a "Compute anyway" button lets
    the user run it once this session (then False). The health check reads only catalogs, so
    this is known before the slow query starts."""
    lacking = missing_indexes(rules)
    if not lacking or st.session_state.get(f"{key}__anyway"):
        return False
    st.warning(
        "Not computed yet: a database lacks an index this needs, so it would read every row "
        "(it can take minutes to hours on large tables). Ask the DBA to run "
        '`python -m data_access.indexes --create` (README, "Indexes for the DBA").\n\n'
        + "\n".join(f"- {escape_markdown(p.message)}" for p in lacking),
        icon="🐢",
    )
    if st.button("Compute anyway", key=f"{key}__button"):
        st.session_state[f"{key}__anyway"] = True
        st.rerun()
    return True


def fetch(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a cached data function; a database that fails mid-page (server gone, contract
    broken) shows st.error naming it and stops the page instead of a traceback."""
    try:
        return function(*args, **kwargs)
    except Exception as exc:
        if not cached.is_database_error(exc):
            raise
        # In words, values blanked; the SQL goes to the server log only.
        st.error(f"Could not read the data: {escape_markdown(failures.in_words(exc))}", icon="🛑")
        st.stop()


def refresh_consent_rollup() -> Any:
    """Bring the ledger's consent roll-up up to date before a page reads consent figures,
    with a progress bar while it is built (the first build on large data takes minutes);
    returns its `Refreshed` (`ready` False while another process builds it, or when the
    pseudonym key changed: a warning then names the command that rebuilds it). Cheap when
    no event is new (RULES.md R20, R21)."""
    slot = st.empty()

    def show_progress(fraction: float, message: str) -> None:
        slot.progress(min(max(fraction, 0.0), 1.0), text=message)

    refreshed = fetch(cached.refresh_consent_rollup, show_progress)
    slot.empty()
    if refreshed.status == consent_rollup.KEY_CHANGED:
        # Never rebuilt on a page view: that takes minutes on large data (README).
        st.warning(
            "The pseudonym key (`DPO_PSEUDONYM_KEY`) changed since the consent roll-up was "
            "built, so new consent events cannot be added to it. The consent figures are "
            "computed from the events directly (slower) until it is rebuilt under the new key: "
            f'`{consent_rollup.REKEY_COMMAND}` (or "Rebuild" on the Consent page).',
            icon="🔑",
        )
    return refreshed


# --- tables and exports ------------------------------------------------------------------


def display_frame(df: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """The frame as shown and exported: `columns` in that order, `*_at` timestamps (stored
    naive UTC) as Europe/Oslo times with their offset, labelled "(Oslo)", `*_on` dates as
    plain dates (ISO on screen and in CSV), and ids and day counts that became floats
    through a missing value shown as whole numbers again."""
    shown = (df[columns] if columns is not None else df).copy()
    for column in shown.columns:
        name, values = str(column), shown[column]
        if name.endswith("_on") and pd.api.types.is_datetime64_any_dtype(values):
            shown[column] = values.dt.date
        elif name.endswith("_at") and pd.api.types.is_datetime64_any_dtype(values):
            shown[column] = clock.oslo_times(values)
        elif _whole_number_column(name, values):
            shown[column] = values.astype("Int64")
    shown = shown.rename(
        columns={c: f"{c} (Oslo)" for c in shown.columns if str(c).endswith("_at")}
    )
    shown.attrs = dict(df.attrs)
    return shown


# Headers the rule in `column_label` would not say well; a page may still give a table its
# own (`column_config`).
COLUMN_LABELS = {
    "id": "ID",
    "case_ref": "Case reference",
    "subject_ref": "Subject reference",
    "duration_s": "Duration (s)",
    "lifetime_days": "Lifetime (days)",
}
# Words of column names as a header writes them.
_HEADER_WORDS = {"email": "e-mail", "dpa": "DPA", "dpf": "DPF", "tia": "TIA", "url": "URL"}


def column_label(name: Any) -> str:
    """The header of a column as display_frame names it: COLUMN_LABELS, else its words
    ("request_type" → "Request type"), an id as the thing it names ("account_id" →
    "Account", "hold_ids" → "Holds"), a date with its time zone ("received_on" → "Received
    (Oslo)", "received_at (Oslo)" → "Received (Oslo time)")."""
    name = str(name)
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    stem, zone = name, ""
    if stem.endswith("_at (Oslo)"):
        stem, zone = stem.removesuffix("_at (Oslo)"), " (Oslo time)"
    elif stem.endswith("_on"):
        stem, zone = stem.removesuffix("_on"), " (Oslo)"
    elif stem.endswith("_ids"):
        stem = stem.removesuffix("_ids") + "s"
    elif stem.endswith("_id"):
        stem = stem.removesuffix("_id")
    words = " ".join(_HEADER_WORDS.get(word, word) for word in stem.split("_") if word)
    return words[:1].upper() + words[1:] + zone if words else name


def column_headers(
    shown: pd.DataFrame, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """st.dataframe's column_config for `shown`: every column headed by column_label, then
    the page's `overrides` by column name (a header, or a st.column_config column; one
    without a label keeps the default header)."""
    config: dict[str, Any] = {str(c): _code_column(shown, c) for c in shown.columns}
    for name, override in (overrides or {}).items():
        if isinstance(override, Mapping) and not override.get("label"):
            override = {**override, "label": column_label(name)}
        config[name] = override
    return config


def _code_column(shown: pd.DataFrame, column: Any) -> Any:
    """The header of `column`, or for a column of codes (words.CODE_COLUMNS) a read-only
    column that shows each code as words; the data keeps the code."""
    label = column_label(column)
    values = shown[column]
    if str(column) not in words.CODE_COLUMNS or not (
        pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)
    ):
        return label
    codes = sorted({str(v) for v in values.dropna()})
    return st.column_config.SelectboxColumn(
        label, options=codes, format_func=words.word, disabled=True
    )


def header_labels(
    shown: pd.DataFrame, overrides: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The header each column of `shown` has on screen (column_headers), by column name:
    the names an export's header row uses, so the file reads like the table."""
    labels = {}
    for name, header in column_headers(shown, overrides).items():
        label = header.get("label") if isinstance(header, Mapping) else header
        labels[name] = str(label) if label else column_label(name)
    return labels


def show_frame(
    shown: pd.DataFrame,
    *,
    column_config: Mapping[str, Any] | None = None,
    row_style: Callable[[pd.Series], list[str]] | None = None,
    **options: Any,
) -> Any:
    """st.dataframe of a frame shaped by display_frame, full width without the index: human
    headers (column_headers, with the page's `column_config`), missing values as blank
    cells, rows coloured by `row_style` when there are at most STYLED_ROWS_MAX. `options`
    go to st.dataframe (key, on_select, ...); returns what it returns."""
    styled = row_style is not None and len(shown) <= STYLED_ROWS_MAX
    return st.dataframe(
        shown.style.apply(row_style, axis=1) if styled else shown,
        hide_index=True,
        width="stretch",
        column_config=column_headers(shown, column_config),
        placeholder="",
        **options,
    )


def _whole_number_column(name: str, values: pd.Series) -> bool:
    """An id or day count stored as float because of a missing value (1186.0 → 1186)."""
    if not (name == "id" or name.endswith(("_id", "_days"))):
        return False
    if not pd.api.types.is_float_dtype(values):
        return False
    present = values.dropna()
    return bool((present == present.round()).all())


def row_cap_caption(df: pd.DataFrame, *, full_export: bool | None = None) -> None:
    """Caption 'Showing N of M rows (cap C)' when the data function capped the frame, else
    'N rows'. `full_export` says what the table's download holds when it is capped: every
    matching row (True), only the rows shown (False), or nothing is said (None: no export)."""
    shown = len(df)
    if df.attrs.get("truncated"):
        total = df.attrs.get("total")
        of = f"{total:,}" if total is not None else "more"
        download = {
            True: " The download holds every matching row.",
            False: " The download holds only the rows shown.",
            None: "",
        }[full_export]
        st.caption(
            f"Showing {shown:,} of {of} rows (cap {policy().max_rows:,}).{download} "
            "Narrow the filters to see the rest on screen."
        )
    else:
        st.caption(f"{shown:,} row{'' if shown == 1 else 's'}")


# Reads a table's rows again, given a row limit: every row matching the page's filters,
# as the data function returns them (before display_frame).
FullReader = Callable[[int], pd.DataFrame]


def table(
    df: pd.DataFrame,
    *,
    page: str,
    name: str,
    filters: dict[str, Any],
    columns: list[str] | None = None,
    personal: bool = True,
    column_config: dict[str, Any] | None = None,
    row_style: Callable[[pd.Series], list[str]] | None = None,
    full: FullReader | None = None,
) -> pd.DataFrame:
    """Show `df` (its `columns`, in order) with show_frame, the row-cap caption and an
    export of the same columns under their own names; returns the frame shown.

    When `df` is capped (`.attrs["truncated"]`), the export reads every matching row again:
    with `full` (a function of a row limit, for a frame the page changed after reading it),
    else through `cached.full_reader(df)` when `df` came unchanged from a capped cached read
    function; otherwise it holds the rows shown, and the caption says which (DESIGN.md
    "Exports"). `page`/`name` make the file name (`export_file_name`);
    `filters` are the page's filter values, recorded with a personal-data export (RULES.md
    R40; no data values). `column_config` overrides the headers and formats on screen
    (show_frame); `row_style` colours whole rows on screen only, for tables of up to
    STYLED_ROWS_MAX rows.
    """
    shown = display_frame(df, columns)
    show_frame(shown, column_config=column_config, row_style=row_style)
    reader = full or cached.full_reader(df)
    row_cap_caption(shown, full_export=reader is not None)
    export_table(
        shown,
        page=page,
        name=name,
        filters=filters,
        personal=personal,
        full=_display_reader(reader, columns) if reader is not None else None,
        column_config=column_config,
    )
    return shown


def _display_reader(reader: FullReader, columns: list[str] | None) -> FullReader:
    """`reader` with the frame shaped as shown (display_frame)."""
    return lambda limit: display_frame(reader(limit), columns)


def export_key(page: str, name: str) -> str:
    """Session-state key holding the prepared export of one table."""
    return f"export:{page}:{name}"


# Export formats: (label, file extension, MIME type).
EXPORT_FORMATS = {
    "excel": ("CSV for Excel", "csv", "text/csv"),
    "plain": ("Plain CSV (comma, for tools; unsafe in spreadsheets)", "csv", "text/csv"),
    "xlsx": ("Excel workbook (.xlsx)", "xlsx", export.XLSX_MIME),
}
# The plain dialect keeps every value as it is, `=HYPERLINK(...)` included: a spreadsheet
# would run it as a formula (RULES.md R40). Only a DPO is offered it, with this warning.
PLAIN_CSV_WARNING = (
    "Plain CSV keeps every value unchanged, formulas such as =HYPERLINK(…) included: open it "
    "with tools, not with Excel, LibreOffice or Google Sheets."
)
# Re-reads a capped table at most this many times while it keeps growing underneath.
_FULL_READ_TRIES = 4
# CSV exports are encoded this many rows at a time.
_CSV_CHUNK_ROWS = 10_000


def export_table(
    shown: pd.DataFrame,
    *,
    page: str,
    name: str,
    filters: dict[str, Any],
    personal: bool = True,
    full: FullReader | None = None,
    column_config: Mapping[str, Any] | None = None,
) -> None:
    """A format choice (CSV for Excel, plain CSV, XLSX) and a "Prepare export" button that
    builds the file, audits a personal-data export once, then offers the download
    (RULES.md R40). Plain CSV leaves formulas as they are: only a DPO is offered it, with
    `PLAIN_CSV_WARNING`.

    The file holds every matching row: `shown` itself, or, when `shown` is capped and
    `full` is given, all rows read again through `full` (shaped like `shown`). The audit
    entry (who, which table, the filters, the row count) is written when the file is
    prepared, not on reruns, because st.download_button's click is not reliably reported
    back; the page then prints the audit chain's head (count and short hash, R18) under the
    button. The prepared file is kept in session state under `export_key(page, name)` until
    the table, its filters or the format change; downloading does not rerun the page, so
    its filters and selections stay.

    The header row names the columns as the table on screen does (`header_labels`, with the
    page's `column_config`); the values stay as stored: ids, codes, ISO dates and times.
    """
    key = export_key(page, name)
    day = as_of()
    left, right = st.columns([1, 3], vertical_alignment="center")
    chosen = right.radio(
        "Export format",
        export_formats(identity().role),
        format_func=lambda f: EXPORT_FORMATS[f][0],
        horizontal=True,
        key=f"{key}:format",
        label_visibility="collapsed",
    )
    mime = EXPORT_FORMATS[chosen][2]
    if chosen == "plain":
        right.caption(PLAIN_CSV_WARNING)
    file_name = export_file_name(page, name, day, chosen)
    fingerprint = _fingerprint(shown, filters, day, chosen)
    if left.button("Prepare export", key=f"{key}:prepare", disabled=shown.empty):
        rows, complete = export_rows(shown, full)
        labels = header_labels(shown, column_config)
        data = export_bytes(rows.rename(columns=labels), chosen, sheet=name)
        head = None
        if personal:
            from pages import _actions  # imports this module: imported when used

            head = _actions.run(
                audit.record_export,
                cached.databases(),
                actor=actor(),
                what=f"{page}/{name}",
                filters={**filters, "as_of": day, "format": chosen, "complete": complete},
                rows=len(rows),
            )
        previous = st.session_state.get(key) or {}
        prepared_files.drop(previous.get("token"))
        st.session_state[key] = {
            "fingerprint": fingerprint,
            # The bytes are held process-wide under a token, so an erasure can drop them
            # from every session (data_access/prepared.py).
            "token": prepared_files.hold(data, subjects=export_subjects(filters, personal)),
            "file_name": file_name,
            "rows": len(rows),
            "audit_head": head.head_label if head else None,
        }
    prepared = st.session_state.get(key)
    data = prepared_files.get(prepared.get("token")) if prepared else None
    if prepared and data is None:
        st.session_state.pop(key, None)
        right.caption("The prepared file is gone (expired, or a person in it was erased).")
    elif prepared and prepared["fingerprint"] == fingerprint:
        left.download_button(
            f"Download {prepared['file_name']}",
            data=data,
            file_name=prepared["file_name"],
            mime=mime,
            key=f"{key}:download",
            on_click="ignore",
            icon=":material/download:",
        )
        if prepared["rows"] != len(shown):
            right.caption(f"The file holds {prepared['rows']:,} rows; {len(shown):,} are shown.")
        if prepared.get("audit_head"):
            right.caption(f"Audited; the audit log now holds {prepared['audit_head']}.")
    elif prepared:  # the table, its filters or the format changed: the file is not this one
        prepared_files.drop(prepared.get("token"))
        st.session_state.pop(key, None)


def export_subjects(filters: dict[str, Any], personal: bool) -> tuple[str, ...] | None:
    """Whom a prepared export is about, for `prepared_files.hold`: no one when it is not
    personal data, the one data subject its filters name (`subject_ref`), else many."""
    if not personal:
        return ()
    ref = filters.get("subject_ref")
    return (ref,) if ref else None


def export_file_name(page: str, name: str, day: date, chosen: str) -> str:
    """ "<page>-<name>-<day>" with the format's ending: the two CSV formats differ by a
    suffix ("-excel.csv", "-plain.csv"), so one never overwrites the other in a download
    folder; ".xlsx" for a workbook."""
    extension = EXPORT_FORMATS[chosen][1]
    suffix = f"-{chosen}" if extension == "csv" else ""
    return f"{page}-{name}-{day.isoformat()}{suffix}.{extension}"


def export_formats(role: str | None) -> list[str]:
    """The export formats offered to `role`: plain CSV (formulas unchanged) to a DPO only."""
    return [f for f in EXPORT_FORMATS if f != "plain" or role == "dpo"]


def export_rows(shown: pd.DataFrame, full: FullReader | None) -> tuple[pd.DataFrame, bool]:
    """(the rows to export, whether they are every matching row). A capped `shown` is read
    again through `full` with a limit of its total, raised while the data keeps growing."""
    if not shown.attrs.get("truncated"):
        return shown, True
    if full is None:
        return shown, False
    limit = max(int(shown.attrs.get("total") or 0), 4 * len(shown), 1)
    for _ in range(_FULL_READ_TRIES):
        rows = full(limit)
        if not rows.attrs.get("truncated"):
            return rows, True
        limit = max(4 * limit, int(rows.attrs.get("total") or 0))
    return rows, False


def export_bytes(rows: pd.DataFrame, chosen: str, *, sheet: str = "Export") -> bytes:
    """The file for export format `chosen` ('excel' | 'plain' | 'xlsx'): CSV written in
    chunks of rows, or a workbook (RULES.md R40)."""
    if chosen == "xlsx":
        return export.to_xlsx_bytes(rows, sheet=sheet)
    chunks = (
        rows.iloc[i : i + _CSV_CHUNK_ROWS] for i in range(0, max(len(rows), 1), _CSV_CHUNK_ROWS)
    )
    return b"".join(export.iter_csv(chunks, excel=chosen == "excel"))


def _fingerprint(shown: pd.DataFrame, filters: dict[str, Any], day: date, chosen: str) -> str:
    """What the prepared file depends on; a change hides the stale download button."""
    return json.dumps(
        [
            filters,
            day,
            chosen,
            [str(c) for c in shown.columns],
            len(shown),
            shown.attrs.get("total"),
        ],
        sort_keys=True,
        default=str,
    )


# --- small display helpers ---------------------------------------------------------------


def badge(colour: str | None) -> str:
    """A coloured dot and the colour's name for an R8 badge ('green', 'amber', 'red')."""
    return BADGES.get(colour or "", "")


def empty_state(message: str) -> None:
    """The message shown instead of an empty table."""
    st.info(message, icon="ℹ️")


if __name__ == "__main__":  # served as a page in "pages folder" mode
    from pages import _gate

    _gate.not_a_page()
