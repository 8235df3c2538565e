"""The residue scan: is the person's e-mail, phone or name still anywhere? (RULES.md R18)

After an erasure, R18 wants the person's e-mail, name and phone nowhere in the four
databases except retained invoices (R15), data under a legal hold (R17) and her request
intake records (art. 5(2)). The scan proves it: every text column of every table of the four
databases, found by SQLAlchemy inspection (not a hand list, so a table added later is
scanned too), is searched for

- the e-mail as a whole address (`identifiers.contains_email`),
- each phone number in any usual spelling (`identifiers.contains_phone`),
- each full name as whole words (`identifiers.contains_name`; a name hit may be a namesake,
  so each hit says what was found: the DPO judges a name-only hit).

Each table is read once per chunk of at most MAX_TERMS OR'ed conditions (one LIKE per text
column and needle), so a table is scanned in a pass or two, not once per column and
needle; only the matching rows travel, confirmed in Python as in `data_access.emails`.
The SQL conditions are chosen for speed (`identifiers.text_condition`, `phone_condition`):
on the medium demo data on SQLite (50,000 accounts, 500,000 consent events) the whole scan
takes about 5 s.
The result names no needle: only how many of each kind were searched, and where the hits
are (store.table.column and row count), each either residue or allowed with the reason
(`allowed_by_r18`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection, MetaData, String, Table, Text, inspect, or_, select

from data_access import holds, rules
from data_access import identifiers as ids
from data_access.emails import same_email
from data_access.engines import Databases
from data_access.settings import STORES

MAX_TERMS = 40
_STREAM_ROWS = 1000
# Why a hit may remain: (store, table, row) -> reason, or None when it is residue.
Allowance = Callable[[str, str, Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class Needles:
    """What is searched: the normalised e-mail, phones and names (see `identifiers`)."""

    email: str
    phones: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    def terms(self) -> list[tuple[str, str]]:
        """(kind, needle) pairs: 'email', 'phone', 'name'."""
        return (
            [("email", self.email)]
            + [("phone", p) for p in self.phones]
            + [("name", n) for n in self.names]
        )

    def found_in(self, text: Any) -> set[str]:
        """The kinds of needle `text` holds (confirmed, not the SQL superset)."""
        check = {"email": ids.contains_email, "phone": ids.contains_phone}
        return {
            kind
            for kind, needle in self.terms()
            if check.get(kind, ids.contains_name)(text, needle)
        }


@dataclass
class Where:
    """Hits in one column: rows, the kinds found, and why they may remain (None: residue)."""

    column: str  # "store.table.column"
    rows: int = 0
    found: set[str] = field(default_factory=set)
    why: str | None = None

    def as_dict(self) -> dict[str, Any]:
        entry = {"where": self.column, "rows": self.rows, "found": sorted(self.found)}
        return entry | ({"why": self.why} if self.why else {})


@dataclass
class Scan:
    """The scan's result (JSON-ready through `as_dict`; it names no needle, R18)."""

    searched: dict[str, int]
    tables: int = 0
    text_columns: int = 0
    residue_rows: int = 0  # distinct rows with residue (a row may hit in several columns)
    name_only_rows: int = 0  # of those, rows hit by a name alone: possibly a namesake
    hits: dict[tuple[str, str | None], Where] = field(default_factory=dict)

    def add(self, column: str, kinds: set[str], why: str | None) -> None:
        where = self.hits.setdefault((column, why), Where(column, why=why))
        where.rows += 1
        where.found |= kinds

    @property
    def residue(self) -> list[Where]:
        return [w for (_, why), w in sorted(self.hits.items(), key=_order) if why is None]

    @property
    def allowed(self) -> list[Where]:
        return [w for (_, why), w in sorted(self.hits.items(), key=_order) if why is not None]

    def as_dict(self) -> dict[str, Any]:
        """{"searched": {"email": 1, "phone": n, "name": n}, "scanned": {"databases",
        "tables", "text_columns"}, "residue_rows": distinct rows, "name_only_rows": those of
        them hit by a name alone (possibly a namesake: the DPO judges), "residue": [{"where",
        "rows", "found"}], "allowed": [{"where", "rows", "found", "why"}]}; "rows" in an entry
        counts the rows hit in that column."""
        return {
            "searched": self.searched,
            "scanned": {
                "databases": len(STORES),
                "tables": self.tables,
                "text_columns": self.text_columns,
            },
            "residue_rows": self.residue_rows,
            "name_only_rows": self.name_only_rows,
            "residue": [w.as_dict() for w in self.residue],
            "allowed": [w.as_dict() for w in self.allowed],
        }


def _order(item):
    (column, why), _ = item
    return (column, why or "")


def scan(
    dbs: Databases,
    needles: Needles,
    *,
    allowed: Allowance | None = None,
) -> Scan:
    """Search every text column of the four databases for the needles (module docstring).

    `allowed(store, table, row)` gives the reason a hit row may remain (None: residue).
    Reads each store through a connection of its own. Raises DatabaseUnavailable (or the
    driver's error) when a store is down.
    """
    result = Scan(searched={"email": 1, "phone": len(needles.phones), "name": len(needles.names)})
    for store in STORES:
        with dbs.engine(store).connect() as conn:
            for table in _text_tables(conn):
                result.tables += 1
                result.text_columns += len(_text_columns(table))
                _scan_table(conn, store, table, needles, allowed, result)
    return result


def _text_tables(conn: Connection) -> list[Table]:
    """Every table of the database (reflected) with at least one text column, by name."""
    metadata = MetaData()
    tables = []
    for name in sorted(inspect(conn).get_table_names()):
        table = Table(name, metadata, autoload_with=conn)
        if _text_columns(table):
            tables.append(table)
    return tables


def _text_columns(table: Table) -> list:
    return [c for c in table.columns if isinstance(c.type, String | Text)]


def _scan_table(
    conn: Connection,
    store: str,
    table: Table,
    needles: Needles,
    allowed: Allowance | None,
    result: Scan,
) -> None:
    """One query per chunk of MAX_TERMS conditions; each matching row counted once per
    column it is confirmed in (a row found by two chunks is not counted twice)."""
    terms = [
        ids.phone_condition(column, needle)
        if kind == "phone"
        else ids.text_condition(column, needle, conn.dialect.name)
        for column in _text_columns(table)
        for kind, needle in needles.terms()
    ]
    key = list(table.primary_key.columns) or list(table.columns)
    seen: set[tuple] = set()
    for start in range(0, len(terms), MAX_TERMS):
        query = select(table).where(or_(*terms[start : start + MAX_TERMS]))
        # Per statement: options set on a connection outlive the query they were meant for.
        rows = conn.execute(query, execution_options={"yield_per": _STREAM_ROWS})
        for row in rows.mappings():
            identity = tuple(row[c.name] for c in key)
            if identity in seen:
                continue
            found = {c.name: needles.found_in(row[c.name]) for c in _text_columns(table)}
            found = {name: kinds for name, kinds in found.items() if kinds}
            if not found:
                continue  # the SQL superset only
            seen.add(identity)
            why = allowed(store, table.name, row) if allowed else None
            if why is None:
                result.residue_rows += 1
                result.name_only_rows += set().union(*found.values()) == {"name"}
            for name, kinds in found.items():
                result.add(f"{store}.{table.name}.{name}", kinds, why)


# --- what R18 lets remain after an erasure --------------------------------------------------

_ACCOUNT_DATA = ("users.account_members", "users.invoices", "users.usage_sessions")


def allowed_by_r18(
    dbs: Databases, email: str, *, as_of: date, job_id: int | None = None
) -> Allowance:
    """The exclusions of R18 for the person with the normalised `email`, as of `as_of`:

    - every row, while an active legal hold names her e-mail (R17: the erasure kept all);
    - a row of an account under an active hold (the account, its members, invoices, usage,
      its support contacts) and a support contact under a hold on it (R17);
    - an invoice still inside bookkeeping retention (R15, bokføringsloven §13), whoever's;
    - her own request intake records (subject_email hers), kept as proof that her requests
      were handled (R18, art. 5(2));
    - an active legal hold's own row: its scope holds the e-mail while needed (R17, R18);
    - the erasure job `job_id`'s own parameters, cleared as the erasure records the scan.
    Anything else is residue. Reads the ledger's active holds once.
    """
    held = holds.held_keys(dbs)
    email_held = email in held["email"]
    policy = dbs.policy
    cutoff = rules.invoice_issued_cutoff(
        as_of, policy.invoice_retention_years, policy.fiscal_year_end_md
    )

    def why(store: str, table: str, row: Mapping[str, Any]) -> str | None:
        name = f"{store}.{table}"
        if name == "ledger.jobs" and job_id is not None and row.get("id") == job_id:
            return "this erasure's own parameters, cleared as it records this scan"
        if email_held:
            return "legal hold on the e-mail (R17)"
        if (
            name == "users.invoices"
            and row.get("issued_on") is not None
            and row["issued_on"] > cutoff
        ):
            return "invoice inside bookkeeping retention (R15)"
        if name == "support.data_subject_requests" and same_email(row.get("subject_email"), email):
            return "the person's request intake record, proof (R18, art. 5(2))"
        if name == "ledger.legal_holds" and "released_on" in row and row["released_on"] is None:
            return "an active legal hold's scope (R17, R18)"
        account = row["id"] if name == "users.accounts" else None
        if name in _ACCOUNT_DATA or name == "support.contacts":
            account = row.get("account_id")
        if account is not None and account in held["account"]:
            return "legal hold on the account (R17)"
        if name == "support.contacts" and row.get("id") in held["contact"]:
            return "legal hold on the contact (R17)"
        return None

    return why
