"""What erasing a person removes from the breach register (GDPR art. 17; RULES.md R18).

The breach record stays (art. 33(5) requires it, and its counts do not identify anyone);
what goes is every link to the person: her keyed hash in `breach_subjects`, and her e-mail
wherever it was typed into a breach's free text (replaced by "[erased]"). Runs inside the
erasure job's ledger step (`data_access.erasure`).
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, or_, select, update

from data_access import identifiers
from data_access.ledger_tables import breach_subjects, breaches

# The breach columns a DPO types free text into.
TEXT_COLUMNS = (
    "title",
    "reported_by",
    "how_arose",
    "description",
    "data_categories",
    "data_location",
    "consequences",
    "measures_taken",
    "measures_planned",
    "risk_reasoning",
    "notify_reasoning",
    "delay_reasons",
    "phase_missing",
    "subjects_reasoning",
    "subjects_how",
    "closing_note",
)


def erase_person(conn: Connection, norm: str, subject_ref: str) -> dict[str, int]:
    """Remove the person (`norm`: her normalised e-mail, `subject_ref`: its keyed hash) from
    the breach register inside the caller's ledger transaction; returns rows per
    "ledger.<what>" (hash rows deleted, breaches whose text was redacted)."""
    listed = conn.execute(
        delete(breach_subjects).where(breach_subjects.c.subject_ref == subject_ref)
    ).rowcount
    return {
        "ledger.breach_subjects": max(listed, 0),
        "ledger.breaches_text_redacted": _redact_texts(conn, norm),
    }


def _redact_texts(conn: Connection, norm: str) -> int:
    columns = [breaches.c[name] for name in TEXT_COLUMNS]
    dialect = conn.dialect.name
    query = select(breaches.c.id, *columns).where(
        or_(*(identifiers.text_condition(c, norm, dialect) for c in columns))
    )
    changed = 0
    for row in conn.execute(query).mappings().all():
        values = {
            name: identifiers.redact_email(row[name], norm)
            for name in TEXT_COLUMNS
            if row[name] and identifiers.contains_email(row[name], norm)
        }
        if values:
            conn.execute(update(breaches).where(breaches.c.id == row["id"]).values(**values))
            changed += 1
    return changed
