"""Legal holds: data kept beyond its retention for a legal claim (GDPR art. 17(3)(e); RULES.md R17).

A hold names exactly one scope: an e-mail (the person everywhere), an account (the account,
its members and its data) or a support contact (that contact only). While a hold is active
(`released_on` is NULL) it blocks every deletion, purge, anonymisation and erasure in its
scope; once released, whatever is past its date is due at once. Holds live in the ledger,
a small table that is read whole (DESIGN.md "Joins across databases").

E-mails are compared normalised (trimmed, lower-case, RULES.md R12) and stored that way.
"""

from __future__ import annotations

import numbers
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, func, insert, or_, select, update

from data_access import audit, rules, stores
from data_access.clock import today_oslo, utc_now
from data_access.emails import normalised_email
from data_access.engines import Databases
from data_access.frames import read_frame
from data_access.free_text import checked_text
from data_access.ledger_tables import hold_blocks, legal_holds
from data_access.results import ActionResult
from data_access.stores import writes
from data_access.tables import accounts, contacts

SCOPES = ("email", "account", "contact")

_ACTIVE_COLUMNS = [
    "id",
    "scope",
    "account_id",
    "contact_id",
    "email",
    "reason",
    "case_ref",
    "owner",
    "placed_on",
    "review_on",
    "past_review",
]
_ALL_COLUMNS = [
    *_ACTIVE_COLUMNS[:-1],
    "placed_by",
    "released_on",
    "released_by",
    "active",
    "past_review",
]


def normalise_email(email: str | None) -> str:
    """An e-mail as holds and subject lookups compare it: trimmed and lower-case (R12)."""
    return (email or "").strip().lower()


CASE_REF_MAX = legal_holds.c.case_ref.type.length  # characters the column holds


# --- read functions ------------------------------------------------------------------------


def active_holds(dbs: Databases, as_of: date | None = None) -> pd.DataFrame:
    """Holds in force on `as_of` (placed by then, not released by then), the earliest
    review date first (RULES.md R17). Looking back in time shows the holds of that day;
    actions always respect the holds in force now (`covering_holds`).

    Columns: id, scope ('email' | 'account' | 'contact'), account_id, contact_id, email,
    reason, case_ref, owner, placed_on, review_on (Oslo dates), past_review (bool:
    review_on < as_of, a hold the DPO must review). `as_of` defaults to today in
    Europe/Oslo. Capped at policy.max_rows: `.attrs["truncated"]` and `.attrs["total"]`.
    """
    as_of = as_of or today_oslo()
    limit = dbs.policy.max_rows
    query = (
        select(*(legal_holds.c[name] for name in _ACTIVE_COLUMNS[:-1]))
        .where(_in_force(as_of))
        .order_by(legal_holds.c.review_on, legal_holds.c.id)
        .limit(limit + 1)
    )
    with dbs.ledger.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    truncated = len(rows) > limit
    # object dtype keeps NULL ids as None rather than turning the column into floats
    frame = pd.DataFrame(rows[:limit], columns=_ACTIVE_COLUMNS[:-1], dtype=object)
    frame["past_review"] = [review_on < as_of for review_on in frame["review_on"]]
    frame = frame.astype({"past_review": bool})
    frame.attrs.update(truncated=truncated, total=_count(dbs, as_of) if truncated else len(frame))
    return frame


def _in_force(as_of: date):
    """Placed on or before `as_of` and not released by then (Oslo dates)."""
    released = legal_holds.c.released_on
    return and_(legal_holds.c.placed_on <= as_of, or_(released.is_(None), released > as_of))


def all_holds(dbs: Databases, as_of: date | None = None) -> pd.DataFrame:
    """Every hold, released ones included, the most recently placed first (RULES.md R17).

    Columns: id, scope, account_id, contact_id, email, reason, case_ref, owner, placed_on,
    review_on, placed_by, released_on, released_by (Oslo dates; None while active), active
    (bool), past_review (bool: active and review_on < as_of, Oslo; `as_of` defaults to
    today). Capped at policy.max_rows: `.attrs["truncated"]` and `.attrs["total"]`.
    """
    as_of = as_of or today_oslo()
    limit = dbs.policy.max_rows
    selected = [n for n in _ALL_COLUMNS if n not in ("active", "past_review")]
    query = (
        select(*(legal_holds.c[name] for name in selected))
        .order_by(legal_holds.c.placed_on.desc(), legal_holds.c.id.desc())
        .limit(limit + 1)
    )
    with dbs.ledger.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    truncated = len(rows) > limit
    frame = pd.DataFrame(rows[:limit], columns=selected, dtype=object)
    frame["active"] = frame["released_on"].isna().astype(bool)
    frame["past_review"] = [
        bool(active and review_on < as_of)
        for active, review_on in zip(frame["active"], frame["review_on"], strict=True)
    ]
    frame = frame.astype({"past_review": bool})
    frame.attrs.update(truncated=truncated, total=_count(dbs) if truncated else len(frame))
    return frame


def _count(dbs: Databases, as_of: date | None = None) -> int:
    """All holds ever placed, or those in force on `as_of`."""
    query = select(func.count()).select_from(legal_holds)
    if as_of is not None:
        query = query.where(_in_force(as_of))
    with dbs.ledger.connect() as conn:
        return int(conn.execute(query).scalar_one())


def holds_past_review(dbs: Databases, as_of: date) -> int:
    """How many holds in force on `as_of` have `review_on < as_of` (Oslo dates): flagged
    on the Overview (R17)."""
    query = select(func.count()).where(_in_force(as_of), legal_holds.c.review_on < as_of)
    with dbs.ledger.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _active_scopes(dbs: Databases) -> list[dict[str, Any]]:
    """(id, scope, account_id, contact_id, email) of every active hold, streamed in id order.

    The set is small (holds are placed by hand, one per legal case and person)."""
    query = (
        select(
            legal_holds.c.id,
            legal_holds.c.scope,
            legal_holds.c.account_id,
            legal_holds.c.contact_id,
            legal_holds.c.email,
        )
        .where(legal_holds.c.released_on.is_(None))
        .order_by(legal_holds.c.id)
    )
    with dbs.ledger.connect() as conn:
        result = conn.execution_options(yield_per=1000).execute(query)
        return [dict(r) for r in result.mappings()]


def held_keys(dbs: Databases) -> dict[str, frozenset]:
    """What active holds name: {"account": account ids, "email": normalised e-mails,
    "contact": contact ids} (R17). For a fast first pass over many records; use
    `covering_holds` for the hold ids of the few that match."""
    keys: dict[str, set] = {scope: set() for scope in SCOPES}
    for hold in _active_scopes(dbs):
        scope = hold["scope"]
        keys[scope].add(normalise_email(hold["email"]) if scope == "email" else hold[f"{scope}_id"])
    return {scope: frozenset(values) for scope, values in keys.items()}


def covering_holds(
    dbs: Databases,
    *,
    account_ids: Iterable[int] = (),
    emails: Iterable[str] = (),
    contact_ids: Iterable[int] = (),
) -> dict[str, dict[Any, list[int]]]:
    """Which active holds cover the given keys (RULES.md R17).

    Returns {"account": {account_id: [hold ids]}, "email": {normalised e-mail: [hold ids]},
    "contact": {contact_id: [hold ids]}} with only the covered keys present, hold ids
    ascending. A key is covered by the holds that name it directly; a caller combines the
    keys of one record (R13: an account is covered through its id, its owner's e-mail or a
    member's e-mail; a hold on a contact covers that contact only). E-mails match trimmed
    and case-insensitively. Reads the ledger; raises DatabaseUnavailable when it is down.
    """
    wanted = {
        "account": {int(a) for a in account_ids if a is not None and not pd.isna(a)},
        "email": {normalise_email(e) for e in emails if isinstance(e, str) and e.strip()},
        "contact": {int(c) for c in contact_ids if c is not None and not pd.isna(c)},
    }
    covered: dict[str, dict[Any, list[int]]] = {
        "account": defaultdict(list),
        "email": defaultdict(list),
        "contact": defaultdict(list),
    }
    for hold in _active_scopes(dbs):
        scope = hold["scope"]
        key = normalise_email(hold["email"]) if scope == "email" else hold[f"{scope}_id"]
        if scope in wanted and key in wanted[scope]:
            covered[scope][key].append(hold["id"])
    return {scope: dict(keys) for scope, keys in covered.items()}


def blocking_holds(
    dbs: Databases,
    *,
    account_ids: Iterable[int] = (),
    emails: Iterable[str] = (),
    contact_ids: Iterable[int] = (),
) -> list[int]:
    """Ids of the active holds that cover any of the keys of ONE record (R17), ascending.

    The caller passes every key of the record: e.g. for an account its id, its owner's and
    members' e-mails; for a support contact its id, its e-mail and its account."""
    covered = covering_holds(dbs, account_ids=account_ids, emails=emails, contact_ids=contact_ids)
    return sorted({h for keys in covered.values() for ids in keys.values() for h in ids})


def record_blocked(
    dbs: Databases, hold_ids: Iterable[int], *, actor: str, action: str, target: str
) -> None:
    """Record an attempt a hold blocked, once per blocking hold (R17: "the blocked attempt is
    shown"). `target` is a reference such as 'account:42', never personal data."""
    now = utc_now()
    with dbs.ledger.begin() as conn:
        for hold_id in hold_ids:
            conn.execute(
                insert(hold_blocks).values(
                    hold_id=int(hold_id), occurred_at=now, actor=actor, action=action, target=target
                )
            )


def blocked_attempts(dbs: Databases, *, limit: int | None = None) -> pd.DataFrame:
    """Attempts that a legal hold blocked, newest first (R17).

    Columns: id, hold_id, occurred_at (UTC), actor, action, target. Capped at `limit`
    (default policy.max_rows)."""
    query = (
        select(
            hold_blocks.c.id,
            hold_blocks.c.hold_id,
            hold_blocks.c.occurred_at,
            hold_blocks.c.actor,
            hold_blocks.c.action,
            hold_blocks.c.target,
        )
        .order_by(hold_blocks.c.id.desc())
        .limit(limit or dbs.policy.max_rows)
    )
    return read_frame(dbs.ledger, query)


# --- actions -------------------------------------------------------------------------------


@writes(*stores.HOLDS, *stores.AUDIT)
def place_hold(
    dbs: Databases,
    *,
    email: str | None = None,
    account_id: int | None = None,
    contact_id: int | None = None,
    reason: str,
    case_ref: str,
    review_on: date | None = None,
    actor: str,
    owner: str | None = None,
    as_of: date | None = None,
) -> int:
    """Place a legal hold on exactly one scope and return its id (RULES.md R17).

    `review_on` (Oslo date) must be after `as_of`; when None it defaults to
    `rules.hold_review_default(as_of, policy.hold_review_months)`. A later date is allowed
    (the page warns about one beyond the policy's months). `owner` defaults to `actor`,
    `as_of` to today in Europe/Oslo. An e-mail scope is stored normalised, with
    `subject_ref = audit.keyed_hash(email)`. One audit entry (rule R17) with the
    pseudonymous reference only; reason and case reference stay in the hold.
    Placing the same active hold again (same scope, target and case_ref) returns the
    existing id without writing, so a double click places one hold.
    Raises ValueError (nothing written) for: not exactly one scope, an e-mail that is not an
    address (`emails.normalised_email`), an unknown account or contact, an empty reason,
    case_ref or actor, a NUL or more than `free_text.MAX_TEXT` characters in the reason
    (CASE_REF_MAX in the case reference), an owner that is not
    an e-mail address, a review date not after `as_of`.
    """
    as_of = as_of or today_oslo()
    scope, target = _validated_scope(email, account_id, contact_id)
    reason = checked_text(reason, "reason")
    case_ref, actor = checked_text(case_ref, "case reference", most=CASE_REF_MAX), _actor(actor)
    if not reason:
        raise ValueError("A legal hold needs a reason.")
    if not case_ref:
        raise ValueError("A legal hold needs a case reference.")
    if review_on is None:
        review_on = rules.hold_review_default(as_of, dbs.policy.hold_review_months)
    if review_on <= as_of:
        raise ValueError(
            f"The review date {review_on.isoformat()} must be after {as_of.isoformat()}."
        )
    owner = _check_owner(owner)
    _check_target_exists(dbs, scope, target)
    subject_ref = audit.keyed_hash(dbs, target) if scope == "email" else None
    with dbs.ledger.begin() as conn:
        existing = _same_active_hold(conn, scope, target, case_ref)
        if existing is not None:
            return existing
        hold_id = conn.execute(
            insert(legal_holds).values(
                scope=scope,
                email=target if scope == "email" else None,
                subject_ref=subject_ref,
                account_id=target if scope == "account" else None,
                contact_id=target if scope == "contact" else None,
                reason=reason,
                case_ref=case_ref,
                owner=owner or actor,
                placed_by=actor,
                placed_on=as_of,
                review_on=review_on,
            )
        ).inserted_primary_key[0]
        audit.append(
            conn,
            actor=actor,
            action="place_hold",
            rule="R17",
            store="ledger",
            subject_ref=subject_ref,
            target=f"hold:{hold_id}",
            counts={"legal_holds": 1},
            details=_audit_details(scope, target, placed_on=as_of, review_on=review_on),
        )
    return int(hold_id)


def release_hold(dbs: Databases, hold_id: int, *, actor: str, as_of: date | None = None) -> None:
    """Release an active hold on `as_of` (default today, Oslo) and audit it (RULES.md R17).

    What the hold kept and is past its retention becomes due at once. Raises ValueError
    (nothing written) when the hold is unknown, already released, `as_of` is before the day
    it was placed, or `actor` is empty.
    """
    as_of = as_of or today_oslo()
    actor = _actor(actor)
    hold_id = _whole_number(hold_id, "The hold id")
    with dbs.ledger.begin() as conn:
        hold = (
            conn.execute(select(legal_holds).where(legal_holds.c.id == hold_id)).mappings().first()
        )
        if hold is None:
            raise ValueError(f"There is no legal hold {hold_id}.")
        if hold["released_on"] is not None:
            raise ValueError(
                f"Legal hold {hold_id} was already released on {hold['released_on'].isoformat()}."
            )
        if as_of < hold["placed_on"]:
            raise ValueError(
                f"Legal hold {hold_id} was placed on {hold['placed_on'].isoformat()}; "
                f"it cannot be released on {as_of.isoformat()}."
            )
        # The guard in the WHERE clause makes a second, concurrent release change nothing.
        released = conn.execute(
            update(legal_holds)
            .where(legal_holds.c.id == hold_id, legal_holds.c.released_on.is_(None))
            .values(released_on=as_of, released_by=actor)
        )
        if released.rowcount != 1:
            raise ValueError(f"Legal hold {hold_id} was released meanwhile.")
        target = hold["email"] if hold["scope"] == "email" else hold[f"{hold['scope']}_id"]
        audit.append(
            conn,
            actor=actor,
            action="release_hold",
            rule="R17",
            store="ledger",
            subject_ref=hold["subject_ref"],
            target=f"hold:{hold_id}",
            counts={"legal_holds": 1},
            details=_audit_details(hold["scope"], target, released_on=as_of),
        )


@writes(*stores.HOLDS, *stores.AUDIT)
def release_holds(
    dbs: Databases, hold_ids: Iterable[int], *, actor: str, as_of: date | None = None
) -> ActionResult:
    """Release several holds, each as `release_hold` does (RULES.md R17): `succeeded` holds
    the released ids, `failed` why the others were not (unknown, already released, placed
    after `as_of`). Never raises for one bad id among many."""
    result = ActionResult()
    for hold_id in dict.fromkeys(hold_ids):
        try:
            release_hold(dbs, hold_id, actor=actor, as_of=as_of)
        except ValueError as exc:
            result.failed[hold_id] = str(exc)
        else:
            result.succeeded.append(int(hold_id))
    return result


def _validated_scope(
    email: str | None, account_id: int | None, contact_id: int | None
) -> tuple[str, Any]:
    """('email', normalised e-mail) | ('account', id) | ('contact', id); ValueError otherwise."""
    email = normalise_email(email) or None
    given = [
        (name, value)
        for name, value in (("email", email), ("account", account_id), ("contact", contact_id))
        if value is not None
    ]
    if len(given) != 1:
        raise ValueError(
            "A legal hold needs exactly one scope: an e-mail, an account or a contact "
            f"(got {len(given)})."
        )
    scope, target = given[0]
    if scope == "email":
        target = normalised_email(target)  # refuses NUL and other control characters
    if scope != "email":
        target = _whole_number(target, f"The {scope} id")
    return scope, target


def _whole_number(value: Any, what: str) -> int:
    """An id as a Python int; ids taken from a DataFrame arrive as numpy integers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{what} must be a whole number, got {value!r}.")
    return int(value)


_LARGEST_ID = 2**63 - 1


def _check_owner(owner: str | None) -> str | None:
    """The hold's owner as given (stripped), None when blank; an e-mail address or refused."""
    owner = (owner or "").strip()
    if owner and ("@" not in owner or any(c.isspace() or not c.isprintable() for c in owner)):
        raise ValueError(f"The owner must be an e-mail address, not “{owner[:80]}”.")
    return owner or None


def _check_target_exists(dbs: Databases, scope: str, target: Any) -> None:
    """An account or contact hold must name a row that exists: a typo would protect nothing."""
    if scope == "email":
        return  # the person's records are found by e-mail wherever they are (R12)
    if not 1 <= target <= _LARGEST_ID:  # the databases' ids are 64-bit at most
        raise ValueError(f"There is no {scope} {target}.")
    engine, table = (dbs.users, accounts) if scope == "account" else (dbs.support, contacts)
    with engine.connect() as conn:
        found = conn.execute(select(table.c.id).where(table.c.id == target)).first()
    if found is None:
        raise ValueError(f"There is no {scope} {target}.")


def _same_active_hold(conn: Connection, scope: str, target: Any, case_ref: str) -> int | None:
    column = legal_holds.c.email if scope == "email" else legal_holds.c[f"{scope}_id"]
    query = (
        select(legal_holds.c.id)
        .where(
            and_(
                legal_holds.c.scope == scope,
                column == target,
                legal_holds.c.case_ref == case_ref,
                legal_holds.c.released_on.is_(None),
            )
        )
        .order_by(legal_holds.c.id)
        .limit(1)
    )
    return conn.execute(query).scalar()


def _audit_details(scope: str, target: Any, **dates: date) -> dict[str, Any]:
    """Audit details without personal data: the scope, an id target, the dates."""
    details: dict[str, Any] = {"scope": scope, **dates}
    if scope != "email":
        details[f"{scope}_id"] = target
    return details


def _actor(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor:
        raise ValueError("An action needs the signed-in user's e-mail as actor.")
    return actor
