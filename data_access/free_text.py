"""Free text typed into the dashboard (reasons, notes, case references): what may be stored.

Two limits hold on every backend, checked before anything is written:
- no NUL character: PostgreSQL refuses it in text and JSON columns (a `DataError` that
  would otherwise reach the page), so it is refused everywhere with the same message;
- at most a sensible length: a justification runs to pages, not megabytes; a longer paste
  is a mistake (or an attack on the ledger's size) and is refused with the limit.
"""

from __future__ import annotations

MAX_TEXT = 10_000  # characters of a reason, note or description
MAX_LINE = 200  # characters of a one-line field: a case reference, a name


def text_problem(text: str | None, what: str, *, most: int = MAX_TEXT) -> str | None:
    """Why `text` (the `what` of a form, e.g. "reason") cannot be stored, or None when it
    can (None and "" can: whether a field is required is the caller's rule)."""
    text = text or ""
    if "\x00" in text:
        return f"The {what} cannot hold a NUL character."
    if len(text) > most:
        return f"The {what} has {len(text):,} characters; at most {most:,} are allowed."
    return None


def checked_text(
    text: str | None, what: str, *, most: int = MAX_TEXT, error: type[Exception] = ValueError
) -> str:
    """`text` stripped ("" for None), or `error(text_problem(...))` when it cannot be stored."""
    problem = text_problem(text, what, most=most)
    if problem:
        raise error(problem)
    return (text or "").strip()
