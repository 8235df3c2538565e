"""A store's failure in words for the pages; its details for the server log only.

SQLAlchemy's message for a failed statement ends in `[SQL: ...]` and `[parameters: ...]`:
the statement and the values bound to it, e-mail addresses and names among them. Pages and
job results show instead what kind of failure it was, the driver's own one-line reason with
quoted values and e-mail addresses blanked, and a reference; the server log gets the same
reference with the driver's full message and the statement. The parameters go nowhere: they
are personal data (RULES.md R18). Secrets of database URLs are hidden in both
(`settings.hide_secrets`).
"""

from __future__ import annotations

import logging
import re
import secrets

from sqlalchemy import exc as sa

from data_access.settings import hide_secrets

log = logging.getLogger("dpo_dashboard.failures")

# Most specific first: the first class the error is an instance of gives the words.
_WORDS: tuple[tuple[type[Exception], str], ...] = (
    (sa.IntegrityError, "the change conflicts with data already there (a duplicate, or a "
     "reference to a row that does not exist)"),
    (sa.DataError, "a value does not fit its column (too long, out of range, or a character "
     "the database cannot store)"),
    (sa.OperationalError, "the database could not run the statement (server unreachable, "
     "connection lost, a lock held too long, or a table or column missing)"),
    (sa.ProgrammingError, "the database refused the statement (a table or column may be "
     "missing, or access is denied)"),
    (sa.TimeoutError, "no database connection became free in time"),
    (sa.SQLAlchemyError, "the database reported an error"),
)  # fmt: skip
_QUOTED = re.compile(r"'[^']*'|\([^()]*\)=\([^()]*\)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def in_words(error: BaseException) -> str:
    """What went wrong, for a page: for a database error the kind of failure, the driver's
    reason (one line, values and e-mail addresses blanked) and the reference of the server
    log entry that holds the details; for any other error its first line. Never the SQL or
    its parameters; secrets hidden. Logs database errors (`log_failure`)."""
    words = next((w for cls, w in _WORDS if isinstance(error, cls)), None)
    if words is None:
        first = (str(error).strip().splitlines() or [""])[0]
        return hide_secrets(_blanked(first)) if "[SQL:" in str(error) else hide_secrets(first)
    reason = _blanked(hide_secrets(_first_line(getattr(error, "orig", None) or "")))
    shown = f"{words}: {reason}" if reason else words
    return f"{shown} (details in the server log, reference {log_failure(error)})"


def log_failure(error: BaseException) -> str:
    """Write `error` to the server log (the driver's message and the statement, secrets
    hidden, parameters left out) and return the entry's reference: 8 hex digits."""
    reference = secrets.token_hex(4)
    orig = getattr(error, "orig", None)
    statement = getattr(error, "statement", None)
    log.error(
        "Database failure %s: %s: %s\nSQL: %s",
        reference,
        type(orig or error).__name__,
        hide_secrets(str(orig) if orig is not None else _first_line(error)),
        hide_secrets(" ".join(str(statement).split())) if statement else "-",
    )
    return reference


def _first_line(error: object) -> str:
    """The first line of a message, without SQLAlchemy's "(driver.Error) " prefix."""
    line = (str(error).strip().splitlines() or [""])[0]
    return re.sub(r"^\([\w.]+\) ", "", line).split("[SQL:")[0].strip()


def _blanked(text: str) -> str:
    """`text` with quoted values, `(column)=(value)` details and e-mail addresses blanked."""
    return _EMAIL.sub("<e-mail>", _QUOTED.sub("'…'", text))
