"""The facts of a breach (GDPR art. 33(3), 33(5)): which there are, their allowed values, and
how one typed into the dashboard is checked before it is stored.

Each fact is a column of `ledger.breaches`. `checked_facts` turns keyword arguments into
column values or raises ValueError naming the first bad one, so an action writes nothing
when any fact is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from data_access.clock import utc_naive
from data_access.free_text import MAX_LINE, checked_text

CATEGORIES = ("confidentiality", "integrity", "availability")
CAUSES = ("human_error", "attack", "technical", "process", "other")
CHANNELS = ("employee", "processor", "data_subject", "third_party", "monitoring", "other")
RELATIONS = ("customers", "members", "newsletter_subscribers", "visitors", "employees")
RISKS = ("none", "risk", "high")
# Art. 34(3): when the data subjects need not be told although the risk is high.
EXEMPTIONS = {
    "a": "art. 34(3)(a): the data were protected (e.g. encrypted) and unintelligible",
    "b": "art. 34(3)(b): later measures mean the high risk is no longer likely",
    "c": "art. 34(3)(c): telling each would be disproportionate; a public notice instead",
}
STATUSES = ("open", "assessed", "notified", "not_notified", "closed")

# name -> kind. line: one-line text; text: free text; at: a timestamp (stored naive UTC);
# count: a whole number >= 0; flag: yes/no; choice/choices: from the tuple; list: short texts.
FACTS: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "title": ("line", None),
    "occurred_from": ("at", None),
    "occurred_to": ("at", None),
    "aware_at": ("at", None),
    "reported_by": ("line", None),
    "report_channel": ("choice", CHANNELS),
    "processor_id": ("count", None),
    "processor_notice_at": ("at", None),
    "category": ("choices", CATEGORIES),
    "cause": ("choice", CAUSES),
    "how_arose": ("text", None),
    "description": ("text", None),
    "data_categories": ("list", None),
    "subjects_count": ("count", None),
    "subjects_estimated": ("flag", None),
    "records_count": ("count", None),
    "records_estimated": ("flag", None),
    "subject_relations": ("choices", RELATIONS),
    "data_location": ("text", None),
    "consequences": ("text", None),
    "measures_taken": ("text", None),
    "measures_planned": ("text", None),
    "phase_missing": ("text", None),
    "phase_follows_on": ("date", None),
}
REQUIRED = ("title", "aware_at", "reported_by")


def label(name: str) -> str:
    """A fact's name in words ("subjects_count" -> "subjects count")."""
    return name.replace("_", " ")


def checked_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for `facts` (only the names given). Raises ValueError for an unknown
    fact, a value of the wrong kind or outside its choices, a NUL or an over-long text
    (`free_text`), a negative count, or an empty required fact."""
    values: dict[str, Any] = {}
    for name, value in facts.items():
        if name not in FACTS:
            raise ValueError(f"A breach has no fact {name!r}.")
        values[name] = _checked(name, value)
        if name in REQUIRED and values[name] in (None, ""):
            raise ValueError(f"The {label(name)} is required.")
    if values.get("occurred_from") and values.get("occurred_to"):
        if values["occurred_to"] < values["occurred_from"]:
            raise ValueError("The breach cannot end before it began.")
    return values


def _checked(name: str, value: Any) -> Any:
    kind, choices = FACTS[name]
    if kind == "line":
        return checked_text(value, label(name), most=MAX_LINE)
    if kind == "text":
        return checked_text(value, label(name)) or None
    if kind == "at":
        return _timestamp(name, value)
    if kind == "count":
        return _count(name, value)
    if kind == "flag":
        return bool(value)
    if kind == "date":
        if value is not None and not isinstance(value, date):
            raise ValueError(f"The {label(name)} must be a date.")
        return value
    if kind == "choice":
        if value in (None, ""):
            return None
        if value not in choices:
            raise ValueError(f"The {label(name)} must be one of {', '.join(choices)}.")
        return value
    return _listed(name, value, choices)


def _timestamp(name: str, value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        ts = utc_naive(value)
    except (TypeError, ValueError):
        raise ValueError(f"The {label(name)} must be a date and time.") from None
    if not isinstance(ts, datetime):
        raise ValueError(f"The {label(name)} must be a date and time.")
    return ts.replace(microsecond=0)


def _count(name: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"The {label(name)} must be a whole number.")
    if value < 0:
        raise ValueError(f"The {label(name)} cannot be negative.")
    return int(value)


def _listed(name: str, value: Any, choices: tuple[str, ...] | None) -> str | None:
    """A list stored as text: comma-joined choices, or JSON for free short texts."""
    items = [value] if isinstance(value, str) else list(value or [])
    cleaned = []
    for item in items:
        text = checked_text(str(item), label(name), most=MAX_LINE)
        if choices is not None and text not in choices:
            raise ValueError(f"The {label(name)} must be among {', '.join(choices)}.")
        if text and text not in cleaned:
            cleaned.append(text)
    if not cleaned:
        return None
    return ",".join(cleaned) if choices is not None else json.dumps(cleaned, ensure_ascii=False)


def listed(name: str, stored: str | None) -> list[str]:
    """A list fact as stored (`_listed`) back as a list."""
    if not stored:
        return []
    if FACTS[name][1] is not None:
        return stored.split(",")
    return list(json.loads(stored))
