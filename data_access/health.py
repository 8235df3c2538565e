"""Are the four databases usable? (DESIGN.md "Source schemas": the contract with the systems.)

`check` reports what stops a page from working, per store: a URL that could not be parsed,
a server that cannot be reached, a contract table or column that is missing. Extra tables
and columns are allowed (a company may expose views with more). It never raises: pages
show the problems and keep working with the stores that are fine. Passwords are never shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.engine.reflection import ObjectKind

from data_access import indexes, timestamp_formats
from data_access.engines import Databases, engine_url, shown_url
from data_access.ledger_tables import ledger_metadata
from data_access.settings import STORES, hide_secrets
from data_access.tables import SOURCE_METADATA

CONTRACT: dict[str, MetaData] = {**SOURCE_METADATA, "ledger": ledger_metadata}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a store; `table` / `column` are None when the whole store is hit."""

    store: str
    table: str | None
    column: str | None
    message: str
    # 'contract' (the store is unusable for pages that need it) or 'index' (a needed index
    # is missing: the store works, the `rules` named are slow, DESIGN.md "Scale and speed").
    kind: str = "contract"
    rules: tuple[str, ...] = ()


def check(dbs: Databases) -> list[Problem]:
    """Problems of every store, in the order users, consent, support, ledger.

    Reports: a store whose URL was unusable (`dbs.problems`); a server that cannot be
    reached (which database and why, without the password); each missing contract table
    (or view); each missing contract column; each timestamp or date column whose type or
    stored form the dashboard cannot read (`timestamp_formats`); each index the queries need that a source
    table lacks (kind 'index', with what is slow without it: `data_access.indexes`). Reads
    only the catalogs (no table is scanned), so pages run it before their slow queries.
    Never raises.
    """
    problems: list[Problem] = []
    for store in STORES:
        problems.extend(_check_store(dbs, store))
    return problems


def store_ok(problems: list[Problem], store: str) -> bool:
    """True when `problems` (from `check`) has nothing about `store` that makes it unusable
    (a missing index makes queries slow, not wrong)."""
    return not any(p.store == store and p.kind != "index" for p in problems)


def missing_indexes(problems: list[Problem], rules: tuple[str, ...] | None = None) -> list[Problem]:
    """The missing-index problems among `problems`, only those needed by one of `rules`
    (e.g. ('R13',)) when given."""
    return [
        p for p in problems if p.kind == "index" and (rules is None or set(p.rules) & set(rules))
    ]


def summary(dbs: Databases) -> pd.DataFrame:
    """One row per store for the pages: its URL (password hidden), 'ok' or 'problem', and
    what is wrong (problems joined by '; ', None when ok).

    Columns: store, url, status ('ok', 'problem', or 'missing indexes' when only indexes
    are missing), problem. Never raises.
    """
    problems = check(dbs)
    rows = []
    for store in STORES:
        mine = [p for p in problems if p.store == store]
        messages = [p.message for p in mine]
        status = "problem" if not store_ok(mine, store) else "missing indexes"
        rows.append(
            {
                "store": store,
                "url": dbs.urls.get(store, "<not configured>"),
                "status": status if messages else "ok",
                "problem": "; ".join(messages) if messages else None,
            }
        )
    return pd.DataFrame(rows, columns=["store", "url", "status", "problem"])


def _check_store(dbs: Databases, store: str) -> list[Problem]:
    if store in dbs.problems:
        return [Problem(store, None, None, dbs.problems[store])]
    engine = dbs.engines.get(store)
    if engine is None:
        return [Problem(store, None, None, f"The {store} database is not configured.")]
    try:
        found = _columns_by_table(engine)
    except Exception as exc:  # noqa: BLE001 - any failure to reach or read is reported, never raised
        shown = dbs.urls.get(store) or shown_url(engine_url(engine))
        return [Problem(store, None, None, _unreachable(store, engine, exc, shown))]
    gaps = list(_contract_gaps(store, found))
    if store in SOURCE_METADATA:
        gaps.extend(_format_gaps(store, engine, found))
        gaps.extend(_index_gaps(store, engine))
    return gaps


def _format_gaps(store: str, engine: Engine, found) -> list[Problem]:
    """Timestamp and date columns in a type or stored form the dashboard does not read."""
    try:
        wrong = timestamp_formats.column_problems(engine, store, found)
    except Exception as exc:  # noqa: BLE001 - a column that cannot be read is reported
        reason = hide_secrets(indexes.first_line(exc), engine_url(engine))
        return [
            Problem(
                store, None, None, f"The {store} database's timestamps cannot be read: {reason}"
            )
        ]
    return [Problem(store, table, column, message) for table, column, message in wrong]


def _index_gaps(store: str, engine: Engine) -> list[Problem]:
    try:
        lacking = indexes.missing(engine, store)
    except Exception as exc:  # noqa: BLE001 - a catalog that cannot be read is reported
        reason = hide_secrets(indexes.first_line(exc), engine_url(engine))
        message = f"The {store} database's indexes cannot be read: {reason}"
        return [Problem(store, None, None, message, kind="index")]
    return [
        Problem(
            store,
            need.table,
            None,
            f"The {store} table '{need.table}' has no index on ({', '.join(need.columns)}): "
            f"without it {need.slow_without} ({', '.join(need.rules)}). "
            "`python -m data_access.indexes --check` prints the statement to create it.",
            kind="index",
            rules=need.rules,
        )
        for need in lacking
    ]


def _columns_by_table(engine: Engine) -> dict[str, dict[str, object]]:
    """Lower-case table/view name -> lower-case column name -> its reflected type, in one
    inspection."""
    inspector = inspect(engine)
    columns = inspector.get_multi_columns(kind=ObjectKind.ANY)
    return {
        name.lower(): {c["name"].lower(): c["type"] for c in cols}
        for (_schema, name), cols in columns.items()
    }


def _contract_gaps(store: str, found: dict[str, set[str]]):
    for table in CONTRACT[store].sorted_tables:
        have = found.get(table.name.lower())
        if have is None:
            yield Problem(
                store, table.name, None, f"The {store} database has no table '{table.name}'."
            )
            continue
        for column in table.columns:
            if column.name.lower() not in have:
                yield Problem(
                    store,
                    table.name,
                    column.name,
                    f"The {store} table '{table.name}' has no column '{column.name}'.",
                )


def _unreachable(store: str, engine: Engine, exc: Exception, url: str) -> str:
    """Which database (`url`, secrets already hidden) and the driver's reason, with every
    secret of the engine's URL blanked out."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    reason = hide_secrets(reason, engine_url(engine))
    return f"The {store} database at {url} cannot be reached: {reason}"
