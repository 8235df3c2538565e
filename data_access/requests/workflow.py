"""The request workflow: the steps a DPO takes on a data-subject request, as a state machine
(GDPR art. 12; RULES.md R3-R7; DESIGN.md "Actions").

    received ──request_identity──▶ awaiting_identity ──confirm_identity──▶ in_progress
    received / in_progress ──confirm_identity──▶ in_progress
    any open ──extend_request──▶ extended (once; stays awaiting_identity while identity is owed)
    any open ──refuse_request / withdraw_request──▶ refused / withdrawn
    in_progress / extended / received ──complete_request──▶ completed   (see `completion`)

Every step is one ledger transaction: the ledger's write lock first (`audit.lock_ledger`),
then the case is read again and checked, then the case row, one `request_events` row and one
audit entry are written together. A step that does not fit the case's state is refused with
a message and writes nothing. Each write bumps the case's `version`; a caller that passes
the `expected_version` it showed the user is refused when the case changed since, so a
double click or a stale page never acts twice.

The intake rows (support database) are never changed. The ledger keeps the case; audit
entries carry only the keyed hash of the data subject's e-mail (RULES.md R18).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from data_access import audit, stores
from data_access.clock import oslo_date, today_oslo, utc_now
from data_access.engines import Databases
from data_access.free_text import MAX_TEXT, text_problem
from data_access.ledger_tables import request_cases, request_events
from data_access.requests.queries import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    base_due_date,
    deadline,
)
from data_access.results import ActionResult
from data_access.stores import writes
from data_access.tables import data_subject_requests as intake

# Audit action and rule of each request event (the demo data writes the same).
EVENT_ACTIONS = {
    "identity_requested": ("request_identity", "R5"),
    "identity_confirmed": ("confirm_identity", "R5"),
    "extended": ("extend_request", "R3"),
    "completed": ("complete_request", None),
    "refused": ("refuse_request", "R6"),
    "withdrawn": ("withdraw_request", None),
    "report_prepared": ("prepare_report", None),
    "erased": ("record_erasure", "R12"),
    "recipient_tasks_created": ("create_recipient_tasks", "R11"),
    "recipient_notified": ("close_recipient_task", "R11"),
}
METHOD_MAX = 200  # request_cases.identity_method
DATATILSYNET = "Datatilsynet, Postboks 458 Sentrum, 0105 Oslo, www.datatilsynet.no"


class RequestRefused(ValueError):
    """The step does not fit the request's state; the message says why. Nothing was written."""


@dataclass(frozen=True)
class CaseState:
    """A request as read inside the step's ledger transaction."""

    intake: dict[str, Any]  # the support database's intake row
    case: dict[str, Any] | None  # the ledger's request_cases row, None before the first step
    last_effective_on: date | None  # the latest event's effective date

    @property
    def request_id(self) -> int:
        return int(self.intake["id"])

    @property
    def request_type(self) -> str:
        return str(self.intake["request_type"])

    @property
    def received_on(self) -> date:
        return oslo_date(self.intake["received_at"])

    @property
    def status(self) -> str:
        return self.case["status"] if self.case else "received"

    @property
    def version(self) -> int:
        """0 before the first step, then the number of writes to the case."""
        return int(self.case["version"]) if self.case else 0

    def get(self, column: str) -> Any:
        return self.case.get(column) if self.case else None


@dataclass
class Change:
    """What a step writes: case columns, the event with its details, the audit entry."""

    event: str
    values: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    action: str | None = None  # the audit action, when not the event's usual one
    rule: str | None = None
    audit_details: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


# --- the actions ---------------------------------------------------------------------------


@writes(*stores.REQUEST_LEDGER, *stores.AUDIT)
def request_identity(
    dbs: Databases,
    request_id: int,
    *,
    actor: str,
    as_of: date | None = None,
    expected_version: int | None = None,
) -> ActionResult:
    """Ask the data subject to prove their identity (art. 12(6); RULES.md R5).

    Status becomes 'awaiting_identity' and `identity_requested_on` = `as_of` (Oslo date).
    Asked within policy.identity_pause_window_days calendar days of receipt, the deadline
    pauses from that day until the identity is confirmed; asked later, it does not.
    Refused (ActionResult.failed[request_id], nothing written) when the request is closed,
    identity was already asked for or confirmed, or the case changed since
    `expected_version`.
    """

    def decide(conn: Connection, state: CaseState, as_of: date) -> Change:
        _refuse_if_identity_known(state)
        pauses = (as_of - state.received_on).days <= dbs.policy.identity_pause_window_days
        return Change(
            event="identity_requested",
            values={"status": "awaiting_identity", "identity_requested_on": as_of},
            details={"pauses_clock": pauses},
            audit_details={"pauses_clock": pauses},
        )

    return _run(dbs, request_id, decide, actor=actor, as_of=as_of, expected=expected_version)


@writes(*stores.REQUEST_LEDGER, *stores.AUDIT)
def confirm_identity(
    dbs: Databases,
    request_id: int,
    *,
    method: str,
    actor: str,
    as_of: date | None = None,
    expected_version: int | None = None,
) -> ActionResult:
    """Record that the data subject's identity was confirmed, and how (RULES.md R5).

    `method` says how it was checked ("reply from the e-mail address on the account"); no
    identity document is stored. Ends the identity pause on `as_of`; the status becomes
    'in_progress' ('extended' if the request was extended). Also allowed without asking
    first (identity evident from the channel). Refused when `method` is blank or longer
    than 200 characters, identity was already confirmed, `as_of` is before the day it was
    asked for, or the request is closed or changed since `expected_version`.
    """
    method = (method or "").strip()

    def decide(conn: Connection, state: CaseState, as_of: date) -> Change:
        refuse_unstorable(method, "description of the check", most=METHOD_MAX)
        if not method:
            raise RequestRefused(
                "Say how the identity was checked (for example: reply from the e-mail address "
                "on the account). No identity documents are stored (R5)."
            )
        if state.get("identity_confirmed_on") is not None:
            raise RequestRefused(
                f"The identity was already confirmed on "
                f"{state.get('identity_confirmed_on').isoformat()} "
                f"({state.get('identity_method')})."
            )
        asked = state.get("identity_requested_on")
        if asked is not None and as_of < asked:
            raise RequestRefused(
                f"The identity cannot be confirmed on {as_of.isoformat()}, before it was asked "
                f"for on {asked.isoformat()}."
            )
        status = "extended" if state.get("extended") else "in_progress"
        return Change(
            event="identity_confirmed",
            values={
                "status": status,
                "identity_confirmed_on": as_of,
                "identity_method": method,
            },
            details={"method": method},
        )

    return _run(dbs, request_id, decide, actor=actor, as_of=as_of, expected=expected_version)


@writes(*stores.REQUEST_LEDGER, *stores.AUDIT)
def extend_request(
    dbs: Databases,
    request_id: int,
    *,
    reason: str,
    notified_on: date | None,
    actor: str,
    as_of: date | None = None,
    expected_version: int | None = None,
) -> ActionResult:
    """Extend the deadline by policy.dsr_extension_months months (art. 12(3); RULES.md R3, R4).

    The new deadline is roll(add_months(received_on, 3)) plus any identity pause, counted
    from receipt. `notified_on` is the Oslo date the data subject was told of the extension
    and why. Refused, with the deadline left at the base one, when: the reason is blank;
    `notified_on` is missing, before receipt or after `as_of`; `notified_on` is after the
    base deadline (one month plus the pause, R4); the request was extended already (one
    extension per request, R3); or it is closed or changed since `expected_version`.
    """
    reason = (reason or "").strip()

    def decide(conn: Connection, state: CaseState, as_of: date) -> Change:
        refuse_unstorable(reason, "reason")
        base = base_due_date(state.received_on, state.case, as_of, dbs.policy)
        if state.get("extended"):
            notified = state.get("extension_notified_on")
            raise RequestRefused(
                "The request was already extended"
                + (f" (the data subject was told on {notified.isoformat()})" if notified else "")
                + "; a request can be extended only once (R3)."
            )
        if not reason:
            raise RequestRefused(
                "An extension needs a reason, which the data subject must be told (R4). "
                f"The deadline stays {base.isoformat()}."
            )
        if notified_on is None:
            raise RequestRefused(
                "Give the date the data subject was told of the extension (R4). "
                f"The deadline stays {base.isoformat()}."
            )
        if notified_on < state.received_on or notified_on > as_of:
            raise RequestRefused(
                f"The notice date {notified_on.isoformat()} must lie between the day the "
                f"request was received ({state.received_on.isoformat()}) and "
                f"{as_of.isoformat()}."
            )
        if notified_on > base:
            raise RequestRefused(
                f"Too late to extend: the data subject had to be told by {base.isoformat()} "
                f"(the base deadline, R4) but was told on {notified_on.isoformat()}. "
                f"The deadline stays {base.isoformat()}."
            )
        values = {
            "extended": True,
            "extension_reason": reason,
            "extension_notified_on": notified_on,
            # While identity is owed the request stays visibly waiting for it (R5).
            "status": "awaiting_identity" if state.status == "awaiting_identity" else "extended",
        }
        due_on = deadline(state.received_on, {**(state.case or {}), **values}, as_of, dbs.policy)[0]
        return Change(
            event="extended",
            values=values,
            details={"reason": reason, "notified_on": notified_on, "due_on": due_on},
            audit_details={"due_on": due_on},
        )

    return _run(dbs, request_id, decide, actor=actor, as_of=as_of, expected=expected_version)


@writes(*stores.REQUEST_LEDGER, *stores.AUDIT)
def refuse_request(
    dbs: Databases,
    request_id: int,
    *,
    reason: str,
    actor: str,
    as_of: date | None = None,
    in_part: bool = False,
    manifestly_unfounded: bool = False,
    expected_version: int | None = None,
) -> ActionResult:
    """Refuse the request, in full or in part, and close it (art. 12(4), 12(5); RULES.md R6, R7).

    `reason` is the written justification (required). The event keeps the refusal letter
    (Norwegian and English, `refusal_letter`), which names the right to complain to
    Datatilsynet and to a judicial remedy. A refusal is due by the base deadline even when
    the request was extended (R6); a later one is recorded with `late: true`.
    `manifestly_unfounded` marks an art. 12(5) refusal (audited under R7). Refused when the
    reason is blank or the request is closed or changed since `expected_version`.
    """
    reason = (reason or "").strip()

    def decide(conn: Connection, state: CaseState, as_of: date) -> Change:
        refuse_unstorable(reason, "reason")
        if not reason:
            raise RequestRefused(
                "A refusal needs a written reason, which the data subject is told (R6, R7)."
            )
        base = base_due_date(state.received_on, state.case, as_of, dbs.policy)
        letter = refusal_letter(
            request_type=state.request_type,
            received_on=state.received_on,
            reason=reason,
            in_part=in_part,
            manifestly_unfounded=manifestly_unfounded,
        )
        late = as_of > base
        return Change(
            event="refused",
            values={"status": "refused", "closed_on": as_of, "outcome_note": reason},
            details={
                "note": reason,
                "in_part": in_part,
                "manifestly_unfounded": manifestly_unfounded,
                "base_due_on": base,
                "late": late,
                "letter": letter,
            },
            rule="R7" if manifestly_unfounded else "R6",
            audit_details={"in_part": in_part, "late": late},
        )

    return _run(dbs, request_id, decide, actor=actor, as_of=as_of, expected=expected_version)


@writes(*stores.REQUEST_LEDGER, *stores.AUDIT)
def withdraw_request(
    dbs: Databases,
    request_id: int,
    *,
    actor: str,
    as_of: date | None = None,
    note: str | None = None,
    expected_version: int | None = None,
) -> ActionResult:
    """Close the request as withdrawn by the data subject.

    Refused when the request is closed already or changed since `expected_version`.
    """
    note = (note or "").strip() or "The data subject withdrew the request."

    def decide(conn: Connection, state: CaseState, as_of: date) -> Change:
        refuse_unstorable(note, "note")
        return Change(
            event="withdrawn",
            values={"status": "withdrawn", "closed_on": as_of, "outcome_note": note},
            details={"note": note},
        )

    return _run(dbs, request_id, decide, actor=actor, as_of=as_of, expected=expected_version)


def refusal_letter(
    *,
    request_type: str,
    received_on: date,
    reason: str,
    in_part: bool,
    manifestly_unfounded: bool = False,
) -> str:
    """The refusal told to the data subject, in Norwegian and English (art. 12(4); R6).

    Names the reason, the right to complain to Datatilsynet and the right to a judicial
    remedy; with `manifestly_unfounded`, that the request is refused as manifestly
    unfounded or excessive under art. 12(5) (R7). Plain text with ISO dates.
    """
    kind_nb = REQUEST_NAMES_NB.get(request_type, request_type)
    kind_en = request_type.replace("_", " ")
    how_nb = "delvis" if in_part else "helt"
    how_en = "in part" if in_part else "in full"
    ground_nb = (
        "Vi anser forespørselen som åpenbart grunnløs eller overdreven "
        "(personvernforordningen art. 12 nr. 5).\n\n"
        if manifestly_unfounded
        else ""
    )
    ground_en = (
        "We consider the request manifestly unfounded or excessive (GDPR art. 12(5)).\n\n"
        if manifestly_unfounded
        else ""
    )
    return (
        f"Vi har avslått {how_nb} forespørselen din om {kind_nb}, mottatt "
        f"{received_on.isoformat()}.\n\n{ground_nb}Begrunnelse: {reason}\n\n"
        "Du har rett til å klage til Datatilsynet "
        f"({DATATILSYNET}), og du har rett til å bringe saken inn for domstolene "
        "(personvernforordningen art. 12 nr. 4, art. 77 og art. 79).\n\n"
        "-- English --\n\n"
        f"We have refused {how_en} your {kind_en} request received on "
        f"{received_on.isoformat()}.\n\n{ground_en}Reason: {reason}\n\n"
        "You have the right to lodge a complaint with Datatilsynet, the Norwegian Data "
        f"Protection Authority ({DATATILSYNET}), and the right to an effective judicial "
        "remedy before the courts (GDPR art. 12(4), art. 77 and art. 79).\n"
    )


REQUEST_NAMES_NB = {
    "access": "innsyn",
    "rectification": "retting",
    "erasure": "sletting",
    "restriction": "begrensning av behandlingen",
    "portability": "dataportabilitet",
    "objection": "protest mot behandlingen",
    "withdraw_consent": "tilbaketrekking av samtykke",
}


# --- the machinery -------------------------------------------------------------------------

Decide = Callable[[Connection, CaseState, date], Change]


def _run(
    dbs: Databases,
    request_id: int,
    decide: Decide,
    *,
    actor: str,
    as_of: date | None,
    expected: int | None,
) -> ActionResult:
    """One step on one request: refusals become `failed[request_id]`, never an exception."""
    result = ActionResult()
    try:
        run_step(dbs, request_id, decide, actor=actor, as_of=as_of, expected=expected)
    except RequestRefused as exc:
        result.failed[request_id] = str(exc)
    else:
        result.succeeded.append(request_id)
    return result


def refuse_unstorable(text: str, what: str, *, most: int = MAX_TEXT) -> None:
    """Raise RequestRefused when `text` cannot be stored (`free_text.text_problem`: a NUL,
    which PostgreSQL refuses, or more than `most` characters)."""
    problem = text_problem(text, what, most=most)
    if problem:
        raise RequestRefused(problem)


def run_step(
    dbs: Databases,
    request_id: int,
    decide: Decide,
    *,
    actor: str,
    as_of: date | None,
    expected: int | None,
    allow_closed: bool = False,
) -> CaseState:
    """Lock the ledger, read and check the case, let `decide` say what to write, write it.

    Returns the state before the step. Raises RequestRefused (and writes nothing) when the
    request does not exist, is closed (unless `allow_closed`), changed since `expected`, or
    `as_of` is before its receipt or its last step; or when `decide` refuses.
    """
    as_of = as_of or today_oslo()
    row = intake_row(dbs, request_id)
    now = utc_now()
    with dbs.ledger.begin() as conn:
        audit.lock_ledger(conn)
        state = read_state(conn, row)
        check_state(state, as_of, expected, allow_closed=allow_closed)
        change = decide(conn, state, as_of)
        write_change(dbs, conn, state, change, actor=actor, as_of=as_of, now=now)
    return state


def intake_row(dbs: Databases, request_id: int) -> dict[str, Any]:
    """The intake row of a request; raises RequestRefused when there is none."""
    with dbs.support.connect() as conn:
        row = (
            conn.execute(select(intake).where(intake.c.id == int(request_id)).limit(1))
            .mappings()
            .first()
        )
    if row is None:
        raise RequestRefused(f"There is no data-subject request {request_id}.")
    return dict(row)


def read_state(conn: Connection, row: Mapping[str, Any]) -> CaseState:
    """The case of an intake row as the ledger holds it now (inside the caller's transaction)."""
    case = (
        conn.execute(select(request_cases).where(request_cases.c.request_id == row["id"]).limit(1))
        .mappings()
        .first()
    )
    last = conn.execute(
        select(func.max(request_events.c.effective_on)).where(
            request_events.c.request_id == row["id"]
        )
    ).scalar()
    return CaseState(intake=dict(row), case=dict(case) if case else None, last_effective_on=last)


def check_state(
    state: CaseState, as_of: date, expected: int | None, *, allow_closed: bool = False
) -> None:
    """Refuse a step on a closed request, a stale view or a date before the case's history."""
    rid = state.request_id
    if expected is not None and int(expected) != state.version:
        raise RequestRefused(
            f"Request {rid} changed since it was shown (it is now {state.status}); reload "
            "the page and check it again. Nothing was done."
        )
    if state.status in CLOSED_STATUSES and not allow_closed:
        closed_on = state.get("closed_on")
        when = f" on {closed_on.isoformat()}" if closed_on else ""
        raise RequestRefused(
            f"Request {rid} was {state.status}{when}; a closed request cannot change."
        )
    if state.status not in OPEN_STATUSES + CLOSED_STATUSES:
        raise RequestRefused(f"Request {rid} has an unknown status {state.status!r}.")
    if as_of < state.received_on:
        raise RequestRefused(
            f"{as_of.isoformat()} is before the request was received "
            f"({state.received_on.isoformat()})."
        )
    if state.last_effective_on is not None and as_of < state.last_effective_on:
        raise RequestRefused(
            f"{as_of.isoformat()} is before the request's last step "
            f"({state.last_effective_on.isoformat()}); act as of that day or later."
        )


def write_change(
    dbs: Databases,
    conn: Connection,
    state: CaseState,
    change: Change,
    *,
    actor: str,
    as_of: date,
    now: datetime,
) -> None:
    """The case row (insert or versioned update), the event and the audit entry."""
    rid = state.request_id
    if state.case is None:
        values = {"status": "in_progress", "extended": False, **change.values}
        conn.execute(
            insert(request_cases).values(request_id=rid, **values, updated_at=now, version=1)
        )
    else:
        values = {"status": state.status, **change.values}
        done = conn.execute(
            update(request_cases)
            .where(request_cases.c.request_id == rid, request_cases.c.version == state.version)
            .values(**values, updated_at=now, version=state.version + 1)
        )
        if done.rowcount != 1:  # cannot happen under the lock; never write on a lost race
            raise RequestRefused(f"Request {rid} changed meanwhile; nothing was done.")
    conn.execute(
        insert(request_events).values(
            request_id=rid,
            occurred_at=now,
            effective_on=as_of,
            actor=actor,
            event=change.event,
            details=audit.canonical_json(change.details),
        )
    )
    action, rule = EVENT_ACTIONS[change.event]
    audit.append(
        conn,
        actor=actor,
        action=change.action or action,
        rule=change.rule or rule,
        store="ledger",
        subject_ref=audit.keyed_hash(dbs, state.intake["subject_email"]),
        target=f"request:{rid}",
        counts={"request_events": 1, **change.counts},
        details={"event": change.event, "effective_on": as_of, **change.audit_details},
        now=now,
    )


def _refuse_if_identity_known(state: CaseState) -> None:
    confirmed = state.get("identity_confirmed_on")
    if confirmed is not None:
        raise RequestRefused(
            f"The identity was already confirmed on {confirmed.isoformat()} "
            f"({state.get('identity_method')}); there is nothing to ask for."
        )
    asked = state.get("identity_requested_on")
    if asked is not None:
        raise RequestRefused(
            f"The identity was already asked for on {asked.isoformat()}; confirm it when it "
            "arrives."
        )
