"""The source tables' indexes the dashboard's queries need, compared with a company's
database (DESIGN.md "Source schemas", "Scale and speed").

The needed indexes are the ones `tables.py` declares (one source of truth); each carries in
its `info` the rules that need it and what is slow without it. `create_all` makes them for
the demo and the tests, but it leaves a company's existing tables alone, so its database may
lack them. `missing` reads only the database's catalog (one inspection per store, no table
is scanned), so the health check can run it before any slow query.

An index counts as present when the table has any index, unique constraint or primary key
whose leading columns are the needed columns in the same order, whatever its name.

Command line, an explicit step for the company's DBA (never run by the dashboard itself):

    python -m data_access.indexes --check     # the missing indexes and their DDL per backend
    python -m data_access.indexes --create    # create them, one by one, with progress

`--check` exits 1 when an index is missing, 0 when none is; `--create` exits 1 when an index
could not be created (the others are still created).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Column, Index, inspect
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.engine.reflection import ObjectKind
from sqlalchemy.schema import CreateIndex

from data_access.settings import hide_secrets
from data_access.tables import SOURCE_METADATA

# Backend label -> dialect the DDL is compiled for (MariaDB speaks MySQL's dialect).
DIALECTS = {
    "SQLite": sqlite.dialect(),
    "PostgreSQL": postgresql.dialect(),
    "MariaDB": mysql.dialect(),
}


@dataclass(frozen=True)
class NeededIndex:
    """One index a query needs: on `store`.`table` over `columns` (in order), named `name`
    in tables.py; `rules` (e.g. ('R13',)) and `slow_without` say what is slow without it."""

    store: str
    table: str
    name: str
    columns: tuple[str, ...]
    rules: tuple[str, ...]
    slow_without: str
    index: Index

    @property
    def where(self) -> str:
        """'users.account_members (account_id, last_active_at)'."""
        return f"{self.store}.{self.table} ({', '.join(self.columns)})"


def needed(stores: Iterable[str] | None = None) -> list[NeededIndex]:
    """The declared indexes of the source tables of `stores` (all three when None), in the
    order users, consent, support and each store's tables sorted by name."""
    wanted = list(SOURCE_METADATA) if stores is None else list(stores)
    found = []
    for store in wanted:
        for table in sorted(SOURCE_METADATA[store].tables.values(), key=lambda t: t.name):
            for index in sorted(table.indexes, key=lambda i: i.name):
                if _plain(index):
                    found.append(_needed(store, index))
    return found


def _plain(index: Index) -> bool:
    """An index on plain columns, without a WHERE clause: what every backend has. The
    expression and partial indexes (SQLite and PostgreSQL only, README "The expression and
    partial indexes") speed the window queries up further but are not required: the plain
    ones keep every query off a full scan."""
    partial = any(
        index.dialect_options[d]._non_defaults.get("where") is not None
        for d in ("sqlite", "postgresql")
    )
    return not partial and all(isinstance(e, Column) for e in index.expressions)


def _needed(store: str, index: Index) -> NeededIndex:
    info = index.info
    return NeededIndex(
        store=store,
        table=index.table.name,
        name=index.name,
        columns=tuple(c.name for c in index.columns),
        rules=tuple(info.get("rules", ())),
        slow_without=info.get("slow_without", ""),
        index=index,
    )


def missing(engine: Engine, store: str) -> list[NeededIndex]:
    """The needed indexes of `store` that its database (`engine`) lacks.

    Reads the catalog only (SQLAlchemy inspector, one pass per kind), never a table's rows.
    A contract table that is missing or is a view is skipped (the health check reports a
    missing table; a view's indexes are those of the tables behind it). Raises SQLAlchemy
    errors when the database cannot be read."""
    existing = _existing_column_lists(engine)
    return [
        need
        for need in needed([store])
        if need.table.lower() in existing and not _covered(need, existing[need.table.lower()])
    ]


def _existing_column_lists(engine: Engine) -> dict[str, list[tuple[str, ...]]]:
    """Lower-case table name -> the column lists of its indexes, unique constraints and
    primary key (lower-case), for base tables only."""
    inspector = inspect(engine)
    found: dict[str, list[tuple[str, ...]]] = {}

    def add(table: str, columns: Iterable[str | None]) -> None:
        found.setdefault(table.lower(), []).append(tuple((c or "").lower() for c in columns))

    kind = ObjectKind.TABLE
    for (_schema, table), indexes in inspector.get_multi_indexes(kind=kind).items():
        found.setdefault(table.lower(), [])
        for index in indexes:
            add(table, index["column_names"])
    for (_schema, table), uniques in inspector.get_multi_unique_constraints(kind=kind).items():
        for unique in uniques:
            add(table, unique["column_names"])
    for (_schema, table), key in inspector.get_multi_pk_constraint(kind=kind).items():
        if key and key.get("constrained_columns"):
            add(table, key["constrained_columns"])
    return found


def leading_columns(engine: Engine) -> dict[str, set[str]]:
    """Lower-case table name -> the lower-case columns an index (or unique constraint or
    primary key) of it starts with: the columns whose smallest and largest values the
    database finds without reading the table. Base tables only; catalog reads only."""
    return {
        table: {columns[0] for columns in lists if columns}
        for table, lists in _existing_column_lists(engine).items()
    }


def _covered(need: NeededIndex, column_lists: list[tuple[str, ...]]) -> bool:
    wanted = tuple(c.lower() for c in need.columns)
    return any(columns[: len(wanted)] == wanted for columns in column_lists)


def ddl(need: NeededIndex) -> dict[str, str]:
    """The CREATE INDEX statement of `need` per backend: {'SQLite': ..., 'PostgreSQL': ...,
    'MariaDB': ...}, compiled from the tables.py declaration."""
    return {
        backend: str(CreateIndex(need.index).compile(dialect=dialect)).strip() + ";"
        for backend, dialect in DIALECTS.items()
    }


def backend_label(engine: Engine) -> str:
    """'SQLite', 'PostgreSQL' or 'MariaDB' (MySQL too) for `engine`."""
    name = engine.dialect.name
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(name, "MariaDB")


def create(
    engine: Engine, needs: Iterable[NeededIndex], report: Callable[[str], None] = print
) -> dict[str, str]:
    """Create each index of `needs` on `engine`, one statement and transaction each, calling
    `report(line)` before and after each one (its time in seconds). Returns
    {index name: error} for the ones that failed (an existing index of that name on other
    columns, no right to create, a lock timeout); the others are created regardless."""
    failed: dict[str, str] = {}
    needs = list(needs)
    for number, need in enumerate(needs, start=1):
        report(f"[{number}/{len(needs)}] creating {need.name} on {need.where} …")
        started = time.monotonic()
        try:
            need.index.create(engine)
        except Exception as exc:  # noqa: BLE001 - reported per index; the others still run
            reason = first_line(exc)
            failed[need.name] = reason
            report(f"[{number}/{len(needs)}] {need.name} failed: {reason}")
            continue
        report(f"[{number}/{len(needs)}] {need.name} created in {time.monotonic() - started:.1f} s")
    return failed


def first_line(exc: Exception) -> str:
    """The driver's one-line reason of a database error (its first line)."""
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]


# --- command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None, *, dbs=None) -> int:
    """`python -m data_access.indexes --check | --create`; see the module docstring.
    `dbs` (a Databases) replaces the one built from config.toml and the environment."""
    args = _parser().parse_args(argv)
    owned = dbs is None
    if owned:
        from data_access.engines import Databases
        from data_access.settings import load_settings

        dbs = Databases.from_settings(load_settings(args.config))
    try:
        return _run(dbs, create_them=args.create)
    finally:
        if owned:
            dbs.dispose()


def _run(dbs, *, create_them: bool) -> int:
    status = 0
    for store in SOURCE_METADATA:
        try:
            engine = dbs.engine(store)
            lacking = missing(engine, store)
        except Exception as exc:  # noqa: BLE001 - one unreadable store does not stop the others
            reason = hide_secrets(first_line(exc), dbs.urls.get(store, ""))
            print(f"{store}: cannot be read ({exc.__class__.__name__}: {reason})")
            status = 1
            continue
        if not lacking:
            print(f"{store}: every index the dashboard needs is there.")
            continue
        print(
            f"{store} ({backend_label(engine)}, {dbs.urls.get(store, '')}): "
            f"{len(lacking)} index(es) missing"
        )
        if create_them:
            status |= 1 if create(engine, lacking) else 0
            continue
        status = 1
        for need in lacking:
            print(f"\n  {need.name} on {need.where}")
            print(f"    slow without it: {need.slow_without} ({', '.join(need.rules)})")
            for backend, statement in ddl(need).items():
                print(f"    {backend + ':':<12}{statement}")
        print()
    return status


def _parser() -> argparse.ArgumentParser:
    from data_access.settings import config_path

    parser = argparse.ArgumentParser(
        prog="python -m data_access.indexes",
        description="Compare the source databases' indexes with the ones the dashboard's "
        "queries need; print their DDL or create them.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--check", action="store_true", help="print the missing indexes and their DDL"
    )
    what.add_argument("--create", action="store_true", help="create the missing indexes")
    parser.add_argument("--config", default=str(config_path()), help="path of config.toml")
    return parser


if __name__ == "__main__":
    sys.exit(main())
