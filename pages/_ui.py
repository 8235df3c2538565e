"""What every page shares: the header (title, flash message, database check), the "as of"
date, the acting user, and the one table helper that shows a frame with its row cap and
offers an audited CSV export (DESIGN.md "Pages"; RULES.md R40).

Pages call these and the cached data functions; nothing here builds SQL or commits. The
only write is `audit.record_export`, the data_access action that audits a download.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from data_access import audit, cached, export
from data_access.clock import today_oslo
from data_access.settings import Policy

DEMO_ACTOR = "demo@localhost"
# Pages by key, for st.page_link; dashboard.py registers the same files in st.navigation.
PAGE_FILES = {
    "overview": "pages/overview.py",
    "accounts": "pages/accounts_nearing_deletion.py",
    "retention": "pages/retention.py",
    "holds": "pages/legal_holds.py",
    "requests": "pages/data_subject_requests.py",
    "consent": "pages/consent.py",
    "register": "pages/register.py",
    "lookup": "pages/subject_lookup.py",
    "audit": "pages/audit_log.py",
}
BADGES = {"green": "🟢 green", "amber": "🟠 amber", "red": "🔴 red"}
# Row colours cost about a second per 5,000 rows on every rerun; above this many rows the
# flag columns (badge, overdue, stage) carry the same meaning uncoloured.
STYLED_ROWS_MAX = 1000
_FLASH_KEY = "flash"


# --- who and when ------------------------------------------------------------------------


def as_of() -> date:
    """The date the DPO is looking at: the sidebar's "as of" (session key "as_of"), or today
    in Europe/Oslo when the page runs without the sidebar."""
    value = st.session_state.get("as_of")
    return value if isinstance(value, date) else today_oslo()


def policy() -> Policy:
    """The policy numbers in force (months, days, years as their names say)."""
    return cached.databases().policy


def actor() -> str:
    """The signed-in user's e-mail, or demo@localhost while sign-in is off (RULES.md R41)."""
    user = st.user
    if user.get("is_logged_in") and user.get("email"):
        return str(user["email"])
    return DEMO_ACTOR


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
    naming each broken database, table and column, and return False."""
    problems = store_problems(stores) if stores else []
    for problem in problems:
        st.error(describe_problem(problem), icon="🛑")
    return not problems


def fetch(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a cached data function; a database that fails mid-page (server gone, contract
    broken) shows st.error naming it and stops the page instead of a traceback."""
    try:
        return function(*args, **kwargs)
    except Exception as exc:
        if not cached.is_database_error(exc):
            raise
        # The first line names the database error; the rest would echo SQL and parameters.
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        st.error(f"Could not read the data: {reason}", icon="🛑")
        st.stop()


# --- tables and exports ------------------------------------------------------------------


def display_frame(df: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """The frame as shown and exported: `columns` in that order, `*_at` timestamps labelled
    "(UTC)", `*_on` dates as plain dates (ISO on screen and in CSV), and ids and day counts
    that became floats through a missing value shown as whole numbers again."""
    shown = (df[columns] if columns is not None else df).copy()
    for column in shown.columns:
        name, values = str(column), shown[column]
        if name.endswith("_on") and pd.api.types.is_datetime64_any_dtype(values):
            shown[column] = values.dt.date
        elif _whole_number_column(name, values):
            shown[column] = values.astype("Int64")
    shown = shown.rename(columns={c: f"{c} (UTC)" for c in shown.columns if str(c).endswith("_at")})
    shown.attrs = dict(df.attrs)
    return shown


def _whole_number_column(name: str, values: pd.Series) -> bool:
    """An id or day count stored as float because of a missing value (1186.0 → 1186)."""
    if not (name == "id" or name.endswith(("_id", "_days"))):
        return False
    if not pd.api.types.is_float_dtype(values):
        return False
    present = values.dropna()
    return bool((present == present.round()).all())


def row_cap_caption(df: pd.DataFrame) -> None:
    """Caption 'Showing N of M rows (cap C)' when the data function capped the frame, else
    'N rows'. The export holds the rows shown, so the caption says so when they are capped."""
    shown = len(df)
    if df.attrs.get("truncated"):
        total = df.attrs.get("total")
        of = f"{total:,}" if total is not None else "more"
        st.caption(
            f"Showing {shown:,} of {of} rows (cap {policy().max_rows:,}); the export holds "
            "the rows shown. Narrow the filters to see the rest."
        )
    else:
        st.caption(f"{shown:,} row{'' if shown == 1 else 's'}")


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
) -> pd.DataFrame:
    """Show `df` (its `columns`, in order) with st.dataframe, the row-cap caption and a CSV
    export of exactly the rows and columns shown; returns the frame shown.

    `page`/`name` make the file name "<page>-<name>-<as_of>.csv"; `filters` are the page's
    filter values, recorded with a personal-data export (RULES.md R40; no data values).
    `row_style` colours whole rows (e.g. overdue requests) on screen only, for tables of up
    to STYLED_ROWS_MAX rows.
    """
    shown = display_frame(df, columns)
    styled = row_style is not None and len(shown) <= STYLED_ROWS_MAX
    data: Any = shown.style.apply(row_style, axis=1) if styled else shown
    st.dataframe(data, hide_index=True, column_config=column_config, width="stretch")
    row_cap_caption(shown)
    export_csv(shown, page=page, name=name, filters=filters, personal=personal)
    return shown


def export_key(page: str, name: str) -> str:
    """Session-state key holding the prepared export of one table."""
    return f"export:{page}:{name}"


def export_csv(
    shown: pd.DataFrame,
    *,
    page: str,
    name: str,
    filters: dict[str, Any],
    personal: bool = True,
) -> None:
    """A "Prepare CSV" button that builds the file (Excel dialect unless "plain CSV" is on),
    audits a personal-data export once, then offers the download (RULES.md R40).

    The audit entry is written when the file is prepared, not on reruns, because
    st.download_button's click is not reliably reported back. The prepared file is kept in
    session state under `export_key(page, name)` until the table or its filters change.
    """
    key = export_key(page, name)
    day = as_of()
    file_name = f"{page}-{name}-{day.isoformat()}.csv"
    left, right = st.columns([1, 3], vertical_alignment="center")
    plain = right.toggle("Plain CSV (comma, for tools)", key=f"{key}:plain")
    fingerprint = _fingerprint(shown, filters, day, plain)
    if left.button("Prepare CSV export", key=f"{key}:prepare", disabled=shown.empty):
        data = export.to_csv_bytes(shown, excel=not plain)
        if personal:
            audit.record_export(
                cached.databases(),
                actor=actor(),
                what=f"{page}/{name}",
                filters={**filters, "as_of": day, "dialect": "plain" if plain else "excel"},
                rows=len(shown),
            )
            cached.clear("audit_entries", "chain_status")
        st.session_state[key] = {"fingerprint": fingerprint, "data": data, "file_name": file_name}
    prepared = st.session_state.get(key)
    if prepared and prepared["fingerprint"] == fingerprint:
        left.download_button(
            f"Download {prepared['file_name']}",
            data=prepared["data"],
            file_name=prepared["file_name"],
            mime="text/csv",
            key=f"{key}:download",
            on_click="ignore",
            icon=":material/download:",
        )


def _fingerprint(shown: pd.DataFrame, filters: dict[str, Any], day: date, plain: bool) -> str:
    """What the prepared file depends on; a change hides the stale download button."""
    return json.dumps(
        [filters, day, plain, [str(c) for c in shown.columns], len(shown)],
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
