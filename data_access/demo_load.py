"""Bulk loading of generated demo rows: one transaction per store, batches of columns.

A batch is a mapping column name -> numpy array (or list) of equal length, in the forms the
generators produce: DateTime columns as `datetime64[s]` (NaT = NULL), Date columns as
`datetime64[D]`, Numeric columns as integer øre/cents, strings as string or object arrays
(None = NULL). The writer converts them to what the database driver expects.

SQLite, the demo's embedded default, takes the fast path: the raw DB-API connection with
`executemany`, `synchronous=OFF` and an in-memory rollback journal for the load, secondary
indexes dropped first and rebuilt at the end (sorting once beats updating an index per row),
all in one transaction so a store is either fully loaded or untouched. PostgreSQL and
MariaDB get plain SQLAlchemy Core executemany batches in one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal

import numpy as np
from sqlalchemy import Boolean, Date, DateTime, Engine, Numeric, Table, func, insert, select
from sqlalchemy.schema import CreateIndex, DropIndex

Batch = Mapping[str, "np.ndarray | Sequence"]

# Bulk-load settings for SQLite: the data set is recreated from the seed if a crash ever
# interrupted a load, so durability during the load buys nothing.
_SQLITE_LOAD_PRAGMAS = (
    "PRAGMA journal_mode=MEMORY",
    "PRAGMA synchronous=OFF",
    "PRAGMA cache_size=-65536",  # 64 MiB of page cache (and of index sort memory) per store
    "PRAGMA temp_store=FILE",  # index sorts spill to disk instead of growing memory
)
_SQLITE_RESTORE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA analysis_limit=1000",  # approximate statistics: fast on ten million rows
    "ANALYZE",
)


class StoreWriter:
    """Writes batches into the tables of one store inside a single transaction.

    Use as a context manager; `write(table, batch)` returns the rows written. On leaving
    without an error, dropped indexes are rebuilt, PostgreSQL id sequences are moved past
    the ids written, the writers in `wait_for` are waited for, and the transaction commits;
    an error rolls everything back. With `background=True` (SQLite only) the index build
    and commit run in a thread, which overlaps with generating the next store because
    SQLite releases the GIL while it sorts; `wait()` joins it and re-raises its error.
    """

    def __init__(
        self,
        engine: Engine,
        tables: Sequence[Table],
        *,
        background: bool = False,
        wait_for: Sequence[StoreWriter] = (),
    ):
        self.engine = engine
        self.tables = list(tables)
        self.sqlite = engine.dialect.name == "sqlite"
        self.background = background and self.sqlite
        self.wait_for = list(wait_for)
        self.max_ids: dict[str, int] = {}
        self._raw = self._conn = self._tx = None
        self._statements: dict[tuple[str, tuple[str, ...]], str] = {}
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # --- transaction ---------------------------------------------------------------------

    def __enter__(self) -> StoreWriter:
        if self.sqlite:
            # Changing the journal mode away from WAL needs the only connection to the file.
            self.engine.dispose()
            self._raw = self.engine.raw_connection()
            dbapi = self._raw.driver_connection
            dbapi.isolation_level = None  # explicit BEGIN/COMMIT below
            for pragma in _SQLITE_LOAD_PRAGMAS:
                dbapi.execute(pragma)
            dbapi.execute("BEGIN")
            for table in self.tables:
                for index in table.indexes:
                    dbapi.execute(str(DropIndex(index, if_exists=True).compile(self.engine)))
        else:
            self._conn = self.engine.connect()
            self._tx = self._conn.begin()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        failed = exc_type is not None
        if not self.sqlite:
            self._finish_server(failed=failed)
        elif self.background and not failed:
            self._thread = threading.Thread(
                target=self._finish_in_thread, name=f"index-build-{self.engine.url.database}"
            )
            self._thread.start()
        else:
            self._finish_sqlite(failed=failed)

    def wait(self) -> None:
        """Wait for a background finish; raises the error it met, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def _finish_in_thread(self) -> None:
        try:
            self._finish_sqlite(failed=False)
        except BaseException as exc:  # noqa: BLE001 - handed to wait() in the caller's thread
            self._error = exc

    def _finish_sqlite(self, *, failed: bool) -> None:
        dbapi = self._raw.driver_connection
        try:
            if failed:
                dbapi.execute("ROLLBACK")
                return
            for table in self.tables:
                for index in table.indexes:
                    dbapi.execute(str(CreateIndex(index, if_not_exists=True).compile(self.engine)))
            for other in self.wait_for:
                other.wait()
            dbapi.execute("COMMIT")
            for pragma in _SQLITE_RESTORE_PRAGMAS:
                dbapi.execute(pragma)
        except BaseException:
            if dbapi.in_transaction:
                dbapi.execute("ROLLBACK")
            raise
        finally:
            dbapi.isolation_level = ""
            self._raw.close()
            self.engine.dispose()

    def _finish_server(self, *, failed: bool) -> None:
        try:
            if failed:
                self._tx.rollback()
                return
            if self.engine.dialect.name == "postgresql":
                advance_sequences(self._conn, self.tables, self.max_ids)
            for other in self.wait_for:
                other.wait()
            self._tx.commit()
        except BaseException:
            if self._tx.is_active:
                self._tx.rollback()
            raise
        finally:
            self._conn.close()

    # --- rows ----------------------------------------------------------------------------

    def write(self, table: Table, batch: Batch) -> int:
        """Insert one batch of columns into `table`; returns the number of rows."""
        columns = list(batch)
        values = [
            _driver_values(table.c[name], batch[name], sqlite=self.sqlite) for name in columns
        ]
        n = len(values[0]) if values else 0
        if n == 0:
            return 0
        if "id" in batch and len(batch["id"]):
            self.max_ids[table.name] = max(
                self.max_ids.get(table.name, 0), int(np.max(batch["id"]))
            )
        if self.sqlite:
            sql = self._sqlite_insert(table, tuple(columns))
            self._raw.driver_connection.executemany(sql, zip(*values, strict=True))
        else:
            rows = [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]
            self._conn.execute(insert(table), rows)
        return n

    def _sqlite_insert(self, table: Table, columns: tuple[str, ...]) -> str:
        """The INSERT statement for these columns, compiled by SQLAlchemy (qmark style)."""
        key = (table.name, columns)
        if key not in self._statements:
            compiled = insert(table).compile(self.engine, column_keys=list(columns))
            order = compiled.positiontup
            if list(order) != list(columns):
                raise RuntimeError(f"unexpected parameter order for {table.name}: {order}")
            self._statements[key] = str(compiled)
        return self._statements[key]


def advance_sequences(conn, tables: Sequence[Table], max_ids: Mapping[str, int]) -> None:
    """PostgreSQL: move each table's id sequence past the explicit ids written, so the
    dashboard's own inserts (a consent withdrawal, R23) do not collide with them."""
    for table in tables:
        top = max_ids.get(table.name)
        if top and "id" in table.c and table.c.id.autoincrement in (True, "auto"):
            sequence = func.pg_get_serial_sequence(table.name, "id")
            conn.execute(select(func.setval(sequence, top)))


# --- value conversion ------------------------------------------------------------------------


def _driver_values(column, values, *, sqlite: bool) -> list:
    """One column of a batch as a list of driver-ready Python values (None for NULL)."""
    kind = column.type
    if isinstance(kind, DateTime):
        return _datetimes(np.asarray(values, dtype="datetime64[s]"), sqlite=sqlite)
    if isinstance(kind, Date):
        return _dates(np.asarray(values, dtype="datetime64[D]"), sqlite=sqlite)
    if isinstance(kind, Numeric):
        return _money(np.asarray(values), sqlite=sqlite)
    if isinstance(kind, Boolean):
        return [bool(v) for v in values]
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "TU":
            return values.astype(object).tolist()
        return values.tolist()
    return list(values)


def _datetimes(values: np.ndarray, *, sqlite: bool) -> list:
    missing = np.isnat(values)
    if not sqlite:
        out = values.astype("datetime64[us]").astype(object)
        out[missing] = None
        return out.tolist()
    # SQLAlchemy stores SQLite DATETIMEs as 'YYYY-MM-DD HH:MM:SS.ffffff' text; the same form
    # keeps string comparisons with its bound parameters exact.
    text = np.strings.add(
        np.strings.replace(np.datetime_as_string(values, unit="s"), "T", " "), ".000000"
    )
    out = text.astype(object)
    out[missing] = None
    return out.tolist()


def _dates(values: np.ndarray, *, sqlite: bool) -> list:
    missing = np.isnat(values)
    out = (
        np.datetime_as_string(values, unit="D").astype(object) if sqlite else values.astype(object)
    )
    out[missing] = None
    return out.tolist()


def _money(cents: np.ndarray, *, sqlite: bool) -> list:
    """Integer øre to NUMERIC(12,2): Decimal for servers; SQLite stores SQLAlchemy's float."""
    if sqlite:
        return (cents / 100).tolist()
    return [Decimal(int(c)).scaleb(-2) for c in cents]
