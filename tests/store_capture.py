"""Which stores a piece of code really read and wrote: every SQL statement sent through the
engines of a `Databases` is recorded, and the tables it names are mapped to stores
("database.table", data_access/stores.py). Used to check the stores cached readers and
actions declare against what they do.

The tables are found in the statement text (FROM / JOIN / INTO / UPDATE / DELETE FROM,
quoted or not) and kept only when they are tables of that database, so CTE names and
SQLite's own tables are not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import event, inspect

from data_access.engines import Databases
from data_access.stores import DATABASES

_NAME = r"[`\"\[]?(\w+)[`\"\]]?"
_READ = re.compile(rf"\b(?:FROM|JOIN)\s+{_NAME}", re.IGNORECASE)
_WRITE = re.compile(
    rf"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?(?:IGNORE\s+)?INTO|REPLACE\s+INTO|UPDATE|DELETE\s+FROM)\s+{_NAME}",
    re.IGNORECASE,
)


@dataclass
class Captured:
    """Stores read and written while the capture was open."""

    read: set[str] = field(default_factory=set)
    written: set[str] = field(default_factory=set)


@contextmanager
def capture(dbs: Databases) -> Iterator[Captured]:
    """Record the stores every statement on `dbs` reads and writes while open."""
    captured = Captured()
    listeners = []
    for database in DATABASES:
        engine = dbs.engine(database)
        tables = set(inspect(engine).get_table_names())

        def listen(
            _conn, _cursor, statement, _params, _context, _many, database=database, tables=tables
        ):
            written = {m.group(1) for m in _WRITE.finditer(statement)}
            read = {m.group(1) for m in _READ.finditer(statement)}
            captured.written |= {f"{database}.{t}" for t in written if t in tables}
            captured.read |= {f"{database}.{t}" for t in read | written if t in tables}

        event.listen(engine, "before_cursor_execute", listen)
        listeners.append((engine, listen))
    try:
        yield captured
    finally:
        for engine, listen in listeners:
            event.remove(engine, "before_cursor_execute", listen)
