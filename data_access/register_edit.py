"""Editing the register: processing activities, recipients and processors, cookies
(GDPR art. 28, 30, 44-49; ekomloven §3-15; RULES.md R24, R30-R32).

Each save validates the values first (required fields, enumerated roles, legal bases and
transfer mechanisms, ISO 3166-1 alpha-2 countries, dates not in the future, a mechanism that
fits the country, text without NUL and of at most `free_text.MAX_TEXT` characters), then changes one row in one ledger transaction with an audit entry that
records the fields before and after: register values describe processing, not people, so
they may appear in the audit log (RULES.md R18 keeps people out of it). A save can carry the
row as the user saw it (`expected`): when someone else changed it meanwhile, nothing is
written and the result says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import pycountry
from sqlalchemy import Connection, Table, delete, func, insert, select, update

from data_access import audit, stores
from data_access import ledger_tables as lt
from data_access.clock import today_oslo, utc_now
from data_access.engines import Databases
from data_access.free_text import MAX_TEXT, text_problem
from data_access.register import EEA_COUNTRIES
from data_access.results import ActionResult
from data_access.stores import writes

ROLES = ("processor", "joint_controller", "independent_controller")
MECHANISMS = ("eea", "adequacy", "dpf", "scc", "none")
LEGAL_BASES = tuple(f"art. 6(1)({letter})" for letter in "abcdef")
PARTIES = ("first", "third")
CATEGORIES = ("strictly_necessary", "statistics", "marketing")
TEXT_LIMITS = {"name": 200, "legal_name": 200, "provider": 200, "lifetime": 60}
# ISO 3166-1 alpha-2 code -> English short name, for pickers (pycountry's ISO data).
COUNTRIES = dict(sorted((c.alpha_2, c.name) for c in pycountry.countries))


class RegisterError(ValueError):
    """Values that cannot be saved; `errors` maps each field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Kind:
    """One register table: its Table, its audit noun, the rule it implements, the field
    that names a row, and the validator of its values."""

    table: Table
    noun: str
    rule: str
    unique: tuple[str, ...]


ACTIVITY = Kind(lt.processing_activities, "processing activity", "R30", ("name",))
RECIPIENT = Kind(lt.recipients, "recipient", "R31", ("name",))
COOKIE = Kind(lt.cookies, "cookie", "R24", ("name", "provider"))


# --- validation -------------------------------------------------------------------------------


def country_name(code: str | None) -> str | None:
    """The English short name of an ISO 3166-1 alpha-2 code, or None when it is not one."""
    if not code or len(code.strip()) != 2:
        return None
    country = pycountry.countries.get(alpha_2=code.strip().upper())
    return country.name if country else None


def validate_recipient(values: Mapping[str, Any], *, as_of: date | None = None) -> dict[str, Any]:
    """Clean recipient values (RULES.md R31). Raises RegisterError naming every bad field:
    name required; role one of ROLES; country an ISO 3166-1 alpha-2 code (or empty);
    transfer_mechanism one of MECHANISMS, 'eea' only for an EEA country, 'dpf' only for the
    US; dates (dpa_signed_on, dpf_checked_on, tia_on, last_review_on) not after `as_of`."""
    as_of = as_of or today_oslo()
    errors: dict[str, str] = {}
    clean = {
        "name": _text(values, "name", errors, required=True),
        "legal_name": _text(values, "legal_name", errors),
        "role": _choice(values, "role", ROLES, errors),
        "purpose": _text(values, "purpose", errors),
        "data_categories": _text(values, "data_categories", errors),
        "country": _country(values, errors),
        "transfer_mechanism": _choice(values, "transfer_mechanism", MECHANISMS, errors),
        "named_in_policy": bool(values.get("named_in_policy", False)),
        "receives_personal_data": bool(values.get("receives_personal_data", True)),
        "notes": _text(values, "notes", errors),
    }
    for field in ("dpa_signed_on", "dpf_checked_on", "tia_on", "last_review_on"):
        clean[field] = _date(values, field, as_of, errors)
    country, mechanism = clean["country"], clean["transfer_mechanism"]
    if "country" not in errors and "transfer_mechanism" not in errors:
        if mechanism == "eea" and country and country not in EEA_COUNTRIES:
            errors["transfer_mechanism"] = f"'eea' is only for countries in the EEA, not {country}."
        if mechanism == "dpf" and country != "US":
            errors["transfer_mechanism"] = (
                "The EU-US Data Privacy Framework covers recipients in the US (country US)."
            )
    _raise_if(errors)
    return clean


def validate_activity(values: Mapping[str, Any], *, as_of: date | None = None) -> dict[str, Any]:
    """Clean processing-activity values (RULES.md R30). Raises RegisterError: name and
    purpose required, legal_basis one of LEGAL_BASES. `updated_on` becomes `as_of`."""
    errors: dict[str, str] = {}
    clean = {
        "name": _text(values, "name", errors, required=True),
        "purpose": _text(values, "purpose", errors, required=True),
        "legal_basis": _choice(values, "legal_basis", LEGAL_BASES, errors),
    }
    for field in (
        "data_subjects",
        "data_categories",
        "recipients",
        "third_country_transfers",
        "retention_rule",
        "security_measures",
    ):
        clean[field] = _text(values, field, errors)
    clean["updated_on"] = as_of or today_oslo()
    _raise_if(errors)
    return clean


def validate_cookie(values: Mapping[str, Any], *, as_of: date | None = None) -> dict[str, Any]:
    """Clean cookie values (RULES.md R24). Raises RegisterError: name and provider required,
    party one of PARTIES, category one of CATEGORIES, lifetime_days a whole number >= 0 or
    empty. A statistics or marketing cookie without consent is allowed here: it is what
    the register findings flag (ekomloven §3-15)."""
    errors: dict[str, str] = {}
    clean = {
        "name": _text(values, "name", errors, required=True),
        "provider": _text(values, "provider", errors, required=True),
        "party": _choice(values, "party", PARTIES, errors),
        "category": _choice(values, "category", CATEGORIES, errors),
        "lifetime": _text(values, "lifetime", errors),
        "consent_required": bool(values.get("consent_required", False)),
    }
    days = values.get("lifetime_days")
    if days in (None, ""):
        clean["lifetime_days"] = None
    else:
        try:
            clean["lifetime_days"] = int(days)
            if clean["lifetime_days"] < 0 or clean["lifetime_days"] != float(days):
                raise ValueError
        except (TypeError, ValueError):
            errors["lifetime_days"] = "A whole number of days, 0 or more, or empty."
    _raise_if(errors)
    return clean


def _raise_if(errors: dict[str, str]) -> None:
    if errors:
        raise RegisterError(errors)


def _text(
    values: Mapping[str, Any], field: str, errors: dict, *, required: bool = False
) -> str | None:
    value = values.get(field)
    text = " ".join(str(value).split()) if field not in _MULTILINE else str(value or "").strip()
    if value is None or not text:
        if required:
            errors[field] = "Required."
        return None
    limit = TEXT_LIMITS.get(field, MAX_TEXT)
    if len(text) > limit:
        errors[field] = f"At most {limit:,} characters."
    elif problem := text_problem(text, "text"):  # a NUL: PostgreSQL cannot store it
        errors[field] = problem
    return text


_MULTILINE = {"purpose", "data_categories", "notes", "data_subjects", "recipients",
              "third_country_transfers", "retention_rule", "security_measures"}  # fmt: skip


def _choice(
    values: Mapping[str, Any], field: str, allowed: tuple[str, ...], errors: dict
) -> str | None:
    value = str(values.get(field) or "").strip()
    if value not in allowed:
        errors[field] = f"One of {', '.join(allowed)}."
        return None
    return value


def _country(values: Mapping[str, Any], errors: dict) -> str | None:
    value = str(values.get("country") or "").strip().upper()
    if not value:
        return None
    if country_name(value) is None:
        errors["country"] = (
            f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. NO, IE, US)."
        )
        return None
    return value


def _date(values: Mapping[str, Any], field: str, as_of: date, errors: dict) -> date | None:
    value = values.get(field)
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            errors[field] = "A date as YYYY-MM-DD."
            return None
    if not isinstance(value, date):
        errors[field] = "A date as YYYY-MM-DD."
        return None
    if value > as_of:
        errors[field] = f"Cannot be after {as_of.isoformat()}."
        return None
    return value


# --- saving -----------------------------------------------------------------------------------

VALIDATORS = {ACTIVITY.noun: validate_activity, RECIPIENT.noun: validate_recipient,
              COOKIE.noun: validate_cookie}  # fmt: skip


@writes(*stores.REGISTER, *stores.AUDIT)
def save_recipient(
    dbs: Databases,
    values: Mapping[str, Any],
    *,
    actor: str,
    recipient_id: int | None = None,
    expected: Mapping[str, Any] | None = None,
    as_of: date | None = None,
) -> ActionResult:
    """Add a recipient (no id) or change recipient `recipient_id` (RULES.md R31), audited
    with the fields before and after. ActionResult(succeeded=[id]) or failed={id or 'new':
    reason} for invalid values, a duplicate name, a missing row or a row changed since
    `expected` was read."""
    return _save(dbs, RECIPIENT, values, actor=actor, row_id=recipient_id, expected=expected,
                 as_of=as_of)  # fmt: skip


@writes(*stores.REGISTER, *stores.AUDIT)
def save_activity(
    dbs: Databases,
    values: Mapping[str, Any],
    *,
    actor: str,
    activity_id: int | None = None,
    expected: Mapping[str, Any] | None = None,
    as_of: date | None = None,
) -> ActionResult:
    """Add or change a processing activity (RULES.md R30); as `save_recipient`."""
    return _save(dbs, ACTIVITY, values, actor=actor, row_id=activity_id, expected=expected,
                 as_of=as_of)  # fmt: skip


@writes(*stores.REGISTER, *stores.AUDIT)
def save_cookie(
    dbs: Databases,
    values: Mapping[str, Any],
    *,
    actor: str,
    cookie_id: int | None = None,
    expected: Mapping[str, Any] | None = None,
    as_of: date | None = None,
) -> ActionResult:
    """Add or change a cookie (RULES.md R24); as `save_recipient`."""
    return _save(dbs, COOKIE, values, actor=actor, row_id=cookie_id, expected=expected,
                 as_of=as_of)  # fmt: skip


@writes(*stores.REGISTER, *stores.AUDIT)
def delete_entry(
    dbs: Databases,
    kind: str,
    row_id: int,
    *,
    actor: str,
    expected: Mapping[str, Any] | None = None,
) -> ActionResult:
    """Remove one register row of `kind` ('processing activity' | 'recipient' | 'cookie'),
    audited with the row as it was. Raises ValueError for another kind."""
    spec = _kind(kind)
    with dbs.ledger.begin() as conn:
        audit.lock_ledger(conn)
        current = _current(conn, spec, row_id)
        if current is None:
            return ActionResult(failed={row_id: f"No {spec.noun} with id {row_id}."})
        stale = _changed_since(current, expected)
        if stale:
            return ActionResult(failed={row_id: stale})
        conn.execute(delete(spec.table).where(spec.table.c.id == row_id))
        _audit(conn, spec, "register_delete", row_id, actor, before=_plain(current), after=None)
    return ActionResult(succeeded=[row_id])


def _kind(noun: str) -> Kind:
    for spec in (ACTIVITY, RECIPIENT, COOKIE):
        if spec.noun == noun:
            return spec
    raise ValueError(f"kind must be one of {', '.join(VALIDATORS)}, got {noun!r}")


def _save(dbs, spec: Kind, values, *, actor, row_id, expected, as_of) -> ActionResult:
    key = row_id if row_id is not None else "new"
    try:
        clean = VALIDATORS[spec.noun](values, as_of=as_of)
    except RegisterError as exc:
        return ActionResult(failed={key: str(exc)})
    with dbs.ledger.begin() as conn:
        audit.lock_ledger(conn)  # the uniqueness check and the write cannot interleave
        clash = _name_taken(conn, spec, clean, row_id)
        if clash:
            return ActionResult(failed={key: clash})
        if row_id is None:
            new_id = _next_id(conn, spec.table)
            conn.execute(insert(spec.table).values(id=new_id, **clean))
            _audit(conn, spec, "register_insert", new_id, actor, before=None, after=_plain(clean))
            return ActionResult(succeeded=[new_id])
        current = _current(conn, spec, row_id)
        if current is None:
            return ActionResult(failed={key: f"No {spec.noun} with id {row_id}."})
        stale = _changed_since(current, expected)
        if stale:
            return ActionResult(failed={key: stale})
        before = {f: current[f] for f in clean if current[f] != clean[f]}
        if before:
            conn.execute(update(spec.table).where(spec.table.c.id == row_id).values(**clean))
            after = {f: clean[f] for f in before}
            _audit(conn, spec, "register_update", row_id, actor, before=_plain(before),
                   after=_plain(after))  # fmt: skip
    return ActionResult(succeeded=[row_id])


def _current(conn: Connection, spec: Kind, row_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(spec.table).where(spec.table.c.id == row_id)).mappings().first()
    return dict(row) if row else None


def _changed_since(current: dict[str, Any], expected: Mapping[str, Any] | None) -> str | None:
    """Why the row is not as the user saw it, or None."""
    if not expected:
        return None
    changed = sorted(
        f for f, v in expected.items() if f in current and _same(current[f]) != _same(v)
    )
    if changed:
        return (
            "Changed by someone else since you opened it (" + ", ".join(changed) + "); nothing was "
            "saved. Reload and edit again."
        )
    return None


def _same(value: Any) -> Any:
    """Compare values as stored: an empty text and no value alike."""
    return None if value == "" else value


def entry(dbs: Databases, kind: str, row_id: int) -> dict[str, Any] | None:
    """One register row of `kind` as plain values (None stays None), or None: what an edit
    form starts from and passes back as `expected`. Raises ValueError for another kind."""
    spec = _kind(kind)
    with dbs.ledger.connect() as conn:
        return _current(conn, spec, row_id)


def _name_taken(
    conn: Connection, spec: Kind, clean: dict[str, Any], row_id: int | None
) -> str | None:
    table = spec.table
    conditions = [func.lower(table.c[f]) == str(clean[f]).lower() for f in spec.unique]
    query = select(table.c.id).where(*conditions).order_by(table.c.id).limit(1)
    if row_id is not None:
        query = query.where(table.c.id != row_id)
    if conn.execute(query).first() is None:
        return None
    named = " / ".join(str(clean[f]) for f in spec.unique)
    return f"A {spec.noun} named {named} is already in the register."


def _next_id(conn: Connection, table: Table) -> int:
    # The demo seeds the register with explicit ids, so PostgreSQL's sequence may lag behind
    # them; under the ledger lock the next free id is max + 1 on every backend.
    return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()) + 1


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values for the audit entry: dates as ISO text, the rest as given."""
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items()}


def _audit(conn, spec: Kind, action: str, row_id: int, actor: str, *, before, after) -> None:
    audit.append(
        conn,
        actor=actor,
        action=action,
        rule=spec.rule,
        store="ledger",
        target=f"{spec.table.name}:{row_id}",
        counts={spec.table.name: 1},
        details={"before": before, "after": after},
        now=utc_now(),
    )
