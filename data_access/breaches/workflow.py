"""Logging a breach and taking its decisions (GDPR art. 33, 34; RULES.md R50-R53).

A breach goes open -> assessed -> notified | not_notified -> closed:
- `log_breach` records it (also one that needs no notification: art. 33(5), R51);
- `assess` records the risk (none / risk / high) with its reasoning;
- `decide_notification` records whether Datatilsynet is notified, with reasoning, and when
  it was (after the 72 hours, the reasons for the delay too: R50);
- `decide_subject_notice` records whether the data subjects are told (art. 34, R52);
- `close` ends it once the decisions it needs are taken.
`update_breach` fills in or corrects facts at any time before closing; `add_affected_emails`
lists the people affected as keyed hashes only (R18).

Every action validates first and returns an ActionResult: a refusal (a decision without
reasoning, a step that does not fit the breach's state) names the reason and writes
nothing. Otherwise one ledger transaction under the ledger lock changes the breach (guarded
by its version), appends a timeline event and one audit entry (pseudonymous, R18).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from data_access import audit, stores
from data_access.breaches import facts as f
from data_access.breaches.clock import is_late, notification_due_at
from data_access.clock import today_oslo, utc_naive, utc_now
from data_access.emails import normalised_email
from data_access.engines import Databases
from data_access.free_text import MAX_LINE, checked_text, text_problem
from data_access.ledger_tables import (
    breach_events,
    breach_links,
    breach_subjects,
    breaches,
    processing_activities,
    recipients,
)
from data_access.results import ActionResult

# A time typed as "now" may run this far ahead of the server's clock.
FUTURE_SLACK_SECONDS = 300
LINK_KINDS = {"activity": processing_activities, "recipient": recipients}

Check = Callable[[Mapping[str, Any]], str | None]


# --- logging -------------------------------------------------------------------------------


@stores.writes(*stores.BREACHES, *stores.AUDIT)
def log_breach(
    dbs: Databases,
    *,
    title: str,
    aware_at: datetime | str,
    reported_by: str,
    actor: str,
    as_of: date | None = None,
    report_channel: str = "employee",
    activity_ids: Iterable[int] = (),
    recipient_ids: Iterable[int] = (),
    affected_emails: Iterable[str] = (),
    now: datetime | None = None,
    **facts: Any,
) -> int:
    """Log a breach and return its id (art. 33(5); RULES.md R51). Status 'open'.

    `aware_at` (naive UTC, aware or ISO text) starts the clock: `due_at = aware_at + 72 h`
    (R50). For a processor's notice (`report_channel="processor"`, art. 33(2), R53)
    `processor_notice_at` defaults to `aware_at`. `facts` are the other columns of
    `facts.FACTS`; `activity_ids` / `recipient_ids` link the register's processing
    activities and recipients; `affected_emails` are stored as keyed hashes only (R18).
    `as_of` (Oslo date, default today) is recorded in the audit entry.
    Raises ValueError, writing nothing, for a missing title, awareness time or reporter, a
    fact that is not allowed (`facts.checked_facts`), an awareness time in the future, an
    unknown activity or recipient, or a malformed e-mail.
    """
    actor = _actor(actor)
    now = (utc_naive(now) or utc_now()).replace(microsecond=0)
    values = f.checked_facts(
        {
            "title": title,
            "aware_at": aware_at,
            "reported_by": reported_by,
            "report_channel": report_channel,
            **facts,
        }  # fmt: skip
    )
    _check_times(values, now)
    if values["report_channel"] == "processor" and not values.get("processor_notice_at"):
        values["processor_notice_at"] = values["aware_at"]
    links = {"activity": _ids(activity_ids), "recipient": _ids(recipient_ids)}
    refs = _subject_refs(dbs, affected_emails)
    with dbs.ledger.begin() as conn:
        audit.lock_ledger(conn)
        _check_links(conn, links, values.get("processor_id"))
        breach_id = conn.execute(
            insert(breaches).values(
                **{"subjects_estimated": False, "records_estimated": False, **values},
                status="open",
                due_at=notification_due_at(values["aware_at"]),
                subjects_listed=len(refs),
                created_at=now,
                created_by=actor,
                updated_at=now,
                version=1,
            )
        ).inserted_primary_key[0]
        _write_links(conn, breach_id, links)
        _write_subjects(conn, breach_id, refs, now)
        details = {"fields": sorted(values), "links": _link_counts(links), "listed": len(refs)}
        _event(conn, breach_id, actor, "logged", details, now)
        _audit(conn, actor, "log_breach", "R51", breach_id, now,
               {**details, "as_of": as_of or today_oslo()})  # fmt: skip
    return int(breach_id)


@stores.writes(*stores.BREACHES, *stores.AUDIT)
def update_breach(
    dbs: Databases,
    breach_id: int,
    *,
    actor: str,
    activity_ids: Iterable[int] | None = None,
    recipient_ids: Iterable[int] | None = None,
    now: datetime | None = None,
    **facts: Any,
) -> ActionResult:
    """Fill in or correct facts of a breach that is not closed (art. 33(3), 33(4)).

    A changed `aware_at` moves `due_at` with it (R50). `activity_ids` / `recipient_ids`,
    when given, replace the breach's links. The timeline records which facts changed (not
    their values). Refused (nothing written) for a closed breach or a fact that is not
    allowed; a change that changes nothing succeeds without writing."""
    now = (utc_naive(now) or utc_now()).replace(microsecond=0)
    try:
        actor = _actor(actor)
        values = f.checked_facts(facts)
        _check_times(values, now)
    except ValueError as exc:
        return ActionResult(failed={breach_id: str(exc)})
    links = {
        kind: _ids(ids)
        for kind, ids in (("activity", activity_ids), ("recipient", recipient_ids))
        if ids is not None
    }
    result = ActionResult()
    with dbs.ledger.begin() as conn:
        audit.lock_ledger(conn)
        row = _row(conn, breach_id)
        problem = _missing(row) or (
            "The breach is closed; its record can no longer change." if row["status"] == "closed"
            else None
        )  # fmt: skip
        if problem is None:
            try:
                _check_links(conn, links, values.get("processor_id"))
            except ValueError as exc:
                problem = str(exc)
        if problem:
            return ActionResult(failed={breach_id: problem})
        changed = {k: v for k, v in values.items() if row[k] != v}
        if "aware_at" in changed:
            changed["due_at"] = notification_due_at(changed["aware_at"])
            problem = _moved_clock_problem(row, changed["aware_at"], changed["due_at"])
            if problem:
                return ActionResult(failed={breach_id: problem})
        links_changed = {k: ids for k, ids in links.items() if ids != _linked(conn, breach_id, k)}
        if not changed and not links_changed:
            return ActionResult(succeeded=[breach_id])
        _save(conn, row, changed, now)
        for kind, ids in links_changed.items():
            conn.execute(
                breach_links.delete().where(
                    breach_links.c.breach_id == breach_id, breach_links.c.kind == kind
                )
            )
            _write_links(conn, breach_id, {kind: ids})
        details = {"fields": sorted(changed), "links": _link_counts(links_changed)}
        _event(conn, breach_id, actor, "edited", details, now)
        _audit(conn, actor, "edit_breach", "R51", breach_id, now, details)
        result.succeeded.append(breach_id)
    return result


@stores.writes(*stores.BREACHES, *stores.AUDIT)
def add_affected_emails(
    dbs: Databases, breach_id: int, emails: Iterable[str], *, actor: str, now=None
) -> ActionResult:
    """List people affected by their e-mails: each kept only as its keyed hash (R18); the
    breach's `subjects_listed` counts them (an e-mail listed twice counts once). Refused for
    a malformed e-mail or a closed breach."""
    now = (utc_naive(now) or utc_now()).replace(microsecond=0)
    try:
        actor = _actor(actor)
        refs = _subject_refs(dbs, emails)
    except ValueError as exc:
        return ActionResult(failed={breach_id: str(exc)})
    with dbs.ledger.begin() as conn:
        audit.lock_ledger(conn)
        row = _row(conn, breach_id)
        problem = _missing(row) or ("The breach is closed." if row["status"] == "closed" else None)
        if problem:
            return ActionResult(failed={breach_id: problem})
        known = {
            r
            for (r,) in conn.execute(
                select(breach_subjects.c.subject_ref).where(
                    breach_subjects.c.breach_id == breach_id
                )
            )
        }
        new = [r for r in refs if r not in known]
        if not new:
            return ActionResult(succeeded=[breach_id])
        _write_subjects(conn, breach_id, new, now)
        _save(conn, row, {"subjects_listed": row["subjects_listed"] + len(new)}, now)
        _event(conn, breach_id, actor, "subjects_listed", {"added": len(new)}, now)
        _audit(conn, actor, "list_breach_subjects", "R18", breach_id, now, {"added": len(new)},
               counts={"breach_subjects": len(new)})  # fmt: skip
    return ActionResult(succeeded=[breach_id])


# --- decisions -----------------------------------------------------------------------------


@stores.writes(*stores.BREACHES, *stores.AUDIT)
def assess(
    dbs: Databases, breach_id: int, *, risk: str, reasoning: str, actor: str, now=None
) -> ActionResult:
    """Record the risk to the rights and freedoms of those affected: 'none' | 'risk' |
    'high', with its reasoning (art. 33(1), 34(1); R51). Status 'assessed'. Refused without
    reasoning, for another risk value, or once the notification is decided or the breach
    closed (the assessment the decision rests on stays as it was)."""
    now = (utc_naive(now) or utc_now()).replace(microsecond=0)
    problem = _reasoning_problem(reasoning, "risk assessment")
    if risk not in f.RISKS:
        problem = f"The risk must be one of {', '.join(f.RISKS)}."
    changes = {
        "risk": risk,
        "risk_reasoning": (reasoning or "").strip(),
        "status": "assessed",
        "assessed_at": now,
        "assessed_by": actor,
    }

    def fits(row: Mapping[str, Any]) -> str | None:
        if row["status"] not in ("open", "assessed") or row["notify_decision"] is not None:
            return (
                "The notification is already decided; the assessment it rests on stays. "
                "Log a new breach if the facts changed that much."
            )
        return None

    return _decide(dbs, breach_id, actor, problem, fits, changes, now,
                   event="assessed", action="assess_breach", rule="R51",
                   details={"risk": risk})  # fmt: skip


@stores.writes(*stores.BREACHES, *stores.AUDIT)
def decide_notification(
    dbs: Databases,
    breach_id: int,
    *,
    notify: bool,
    reasoning: str,
    actor: str,
    notified_at: datetime | str | None = None,
    reference: str | None = None,
    delay_reasons: str | None = None,
    now: datetime | None = None,
) -> ActionResult:
    """Record whether Datatilsynet is notified (art. 33(1), 33(5); R50, R51), with reasoning.

    `notify=False`: status 'not_notified'; allowed only for a breach assessed as 'none'
    (no risk: art. 33(1) needs notification otherwise). `notify=True` with `notified_at`
    (UTC, when the notification was sent) and optionally Datatilsynet's `reference`: status
    'notified'; without `notified_at` the decision is recorded and the clock keeps running
    until it is given. A notification after `due_at` needs `delay_reasons` (art. 33(1)).
    Refused (nothing written) without reasoning, before the assessment, for a notification
    time before awareness or in the future, or once notified or closed."""
    now = (utc_naive(now) or utc_now()).replace(microsecond=0)
    problem = _reasoning_problem(reasoning, "notification decision")
    try:
        sent = utc_naive(notified_at) if notified_at not in (None, "") else None
        ref = checked_text(reference, "reference", most=MAX_LINE) or None
        delay = checked_text(delay_reasons, "reasons for the delay") or None
    except (TypeError, ValueError) as exc:
        problem = problem or str(exc)
        sent, ref, delay = None, None, None
    if sent is not None and not notify:
        problem = problem or "A breach that is not notified has no notification time."
    if sent is not None and sent > _latest(now):
        problem = problem or "The notification time lies in the future."
    changes = {
        "notify_decision": bool(notify),
        "notify_reasoning": (reasoning or "").strip(),
        "notify_decided_at": now,
        "notify_decided_by": actor,
        "notified_at": sent,
        "notification_reference": ref,
        "delay_reasons": delay,
        "status": ("notified" if sent else "assessed") if notify else "not_notified",
    }

    def fits(row: Mapping[str, Any]) -> str | None:
        if row["status"] in ("notified", "not_notified", "closed"):
            return f"The notification is already decided (status {row['status']})."
        if row["risk"] is None:
            return "Assess the risk first: the decision rests on it (art. 33(1))."
        if not notify and row["risk"] != "none":
            return (
                f"The risk is assessed as '{row['risk']}': art. 33(1) requires notifying "
                "Datatilsynet unless the breach is unlikely to result in a risk."
            )
        if sent is not None and sent < row["aware_at"]:
            return "The notification cannot precede the moment the company became aware."
        if sent is not None and is_late(sent, row["due_at"]) and not delay:
            return (
                "The notification came after the 72 hours: give the reasons for the delay "
                "(art. 33(1))."
            )
        return None

    return _decide(dbs, breach_id, actor, problem, fits, changes, now,
                   event="notification_decided", action="decide_breach_notification",
                   rule="R50" if sent else "R51",
                   details={"notify": bool(notify), "notified": sent is not None,
                            "delay_reasons": delay is not None})  # fmt: skip


@stores.writes(*stores.BREACHES, *stores.AUDIT)
def decide_subject_notice(
    dbs: Databases,
    breach_id: int,
    *,
    notify: bool,
    reasoning: str,
    actor: str,
    how: str | None = None,
    notified_at: datetime | str | None = None,
    exemption: str | None = None,
    now: datetime | None = None,
) -> ActionResult:
    """Record whether the data subjects are told (art. 34; RULES.md R52), with reasoning.

    `notify=True`: `how` (letter, e-mail, public notice) and `notified_at` (UTC) once they
    were told. `notify=False` for a high risk needs an art. 34(3) `exemption` ('a', 'b' or
    'c', `facts.EXEMPTIONS`). Refused (nothing written) without reasoning, before the
    assessment, for a notice time before awareness or in the future, or a closed breach.
    May be recorded again (e.g. planned, then done) until the breach is closed."""
    now = (utc_naive(now) or utc_now()).replace(microsecond=0)
    problem = _reasoning_problem(reasoning, "decision on telling the data subjects")
    try:
        told = utc_naive(notified_at) if notified_at not in (None, "") else None
        how = checked_text(how, "how they were told") or None
    except (TypeError, ValueError) as exc:
        problem = problem or str(exc)
        told = None
    if exemption not in (None, "", *f.EXEMPTIONS):
        problem = problem or "The exemption must be art. 34(3)(a), (b) or (c)."
    if notify and exemption:
        problem = problem or "An exemption applies only to not telling the data subjects."
    if told is not None and not notify:
        problem = problem or "Data subjects who are not told have no notice time."
    if told is not None and not how:
        problem = problem or "Say how the data subjects were told."
    if told is not None and told > _latest(now):
        problem = problem or "The notice time lies in the future."
    changes = {
        "subjects_decision": bool(notify),
        "subjects_reasoning": (reasoning or "").strip(),
        "subjects_exemption": exemption or None,
        "subjects_how": how,
        "subjects_notified_at": told,
        "subjects_decided_at": now,
        "subjects_decided_by": actor,
    }

    def fits(row: Mapping[str, Any]) -> str | None:
        if row["status"] == "closed":
            return "The breach is closed."
        if row["risk"] is None:
            return "Assess the risk first: the decision rests on it (art. 34(1))."
        if not notify and row["risk"] == "high" and not exemption:
            return (
                "The risk is assessed as high: the data subjects must be told unless an "
                "exemption of art. 34(3) applies; choose it."
            )
        if told is not None and told < row["aware_at"]:
            return "The notice cannot precede the moment the company became aware."
        return None

    return _decide(dbs, breach_id, actor, problem, fits, changes, now,
                   event="subjects_decided", action="decide_breach_subject_notice",
                   rule="R52", details={"notify": bool(notify), "told": told is not None,
                                        "exemption": exemption or None})  # fmt: skip


decide_subjects = decide_subject_notice  # the shorter name


@stores.writes(*stores.BREACHES, *stores.AUDIT)
def close(
    dbs: Databases, breach_id: int, *, actor: str, note: str | None = None, now=None
) -> ActionResult:
    """Close a breach whose decisions are taken (RULES.md R51, R52): notified or not
    notified; for a high risk, the decision on telling the data subjects (and, when they are
    told, when); nothing still missing from a phased notification (art. 33(4)). The record
    stays in the register. Refused otherwise, naming what is missing."""
    now = (utc_naive(now) or utc_now()).replace(microsecond=0)
    problem = text_problem(note, "closing note")
    changes = {
        "status": "closed",
        "closed_at": now,
        "closed_by": actor,
        "closing_note": (note or "").strip() or None,
    }

    def fits(row: Mapping[str, Any]) -> str | None:
        if row["status"] == "closed":
            return "The breach is already closed."
        if row["status"] not in ("notified", "not_notified"):
            return "Decide on notifying Datatilsynet first (and record when it was notified)."
        if row["risk"] == "high" and row["subjects_decision"] is None:
            return "The risk is high: decide on telling the data subjects first (art. 34)."
        if row["subjects_decision"] and row["subjects_notified_at"] is None:
            return "Record when and how the data subjects were told first."
        if row["phase_missing"]:
            return (
                "The notification still lacks information (art. 33(4)): send it and clear "
                "'still missing' first."
            )
        return None

    return _decide(dbs, breach_id, actor, problem, fits, changes, now,
                   event="closed", action="close_breach", rule="R51", details={})  # fmt: skip


# --- shared steps --------------------------------------------------------------------------


def _decide(
    dbs: Databases,
    breach_id: int,
    actor: str,
    problem: str | None,
    fits: Check,
    changes: dict[str, Any],
    now: datetime,
    *,
    event: str,
    action: str,
    rule: str,
    details: dict[str, Any],
) -> ActionResult:
    """Refuse with `problem` (input) or `fits(row)` (state, re-checked under the ledger
    lock), else apply `changes`, the timeline event and the audit entry in one transaction."""
    try:
        actor = _actor(actor)
    except ValueError as exc:
        problem = problem or str(exc)
    if problem:
        return ActionResult(failed={breach_id: problem})
    for key in ("assessed_by", "notify_decided_by", "subjects_decided_by", "closed_by"):
        if key in changes:
            changes[key] = actor
    with dbs.ledger.begin() as conn:
        audit.lock_ledger(conn)
        row = _row(conn, breach_id)
        refusal = _missing(row) or fits(row)
        if refusal:
            return ActionResult(failed={breach_id: refusal})
        if "notified_at" in changes and changes["notified_at"] is not None:
            details = {**details, "late": is_late(changes["notified_at"], row["due_at"])}
        details = {k: v for k, v in details.items() if v is not None}
        _save(conn, row, changes, now)
        _event(conn, breach_id, actor, event, {**details, "status": changes.get("status")}, now)
        _audit(conn, actor, action, rule, breach_id, now, details)
    return ActionResult(succeeded=[breach_id])


def _moved_clock_problem(
    row: Mapping[str, Any], aware_at: datetime, due_at: datetime
) -> str | None:
    """Why the awareness time of an already notified breach cannot move so: past its
    notification, or so that the notification becomes late without reasons (R50)."""
    sent = row["notified_at"]
    if sent is None:
        return None
    if aware_at > sent:
        return "The company cannot have become aware after it notified Datatilsynet."
    if is_late(sent, due_at) and not row["delay_reasons"]:
        return (
            "With this awareness time the notification came after the 72 hours, and no "
            "reasons for the delay are recorded (art. 33(1))."
        )
    return None


def _reasoning_problem(reasoning: str | None, what: str) -> str | None:
    problem = text_problem(reasoning, "reasoning")
    if problem:
        return problem
    if not (reasoning or "").strip():
        return f"The {what} needs its reasoning (art. 33(5)); nothing was recorded."
    return None


def _actor(actor: str) -> str:
    actor = (actor or "").strip().lower()
    if "@" not in actor:
        raise ValueError("The actor must be the signed-in user's e-mail.")
    return actor


def _latest(now: datetime) -> datetime:
    return now + timedelta(seconds=FUTURE_SLACK_SECONDS)


def _check_times(values: Mapping[str, Any], now: datetime) -> None:
    for name in ("aware_at", "occurred_from", "processor_notice_at"):
        if values.get(name) and values[name] > _latest(now):
            raise ValueError(f"The {f.label(name)} lies in the future.")


def _ids(ids: Iterable[int] | None) -> list[int]:
    return sorted({int(i) for i in ids or ()})


def _check_links(conn: Connection, links: Mapping[str, list[int]], processor_id) -> None:
    wanted = {k: list(v) for k, v in links.items()}
    if processor_id is not None:
        wanted["processor"] = [processor_id]
    for kind, ids in wanted.items():
        table = LINK_KINDS.get(kind, recipients)
        found = {i for (i,) in conn.execute(select(table.c.id).where(table.c.id.in_(ids)))}
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValueError(f"No {kind} with id {', '.join(map(str, missing))} in the register.")


def _linked(conn: Connection, breach_id: int, kind: str) -> list[int]:
    query = select(breach_links.c.ref_id).where(
        breach_links.c.breach_id == breach_id, breach_links.c.kind == kind
    )
    return sorted(i for (i,) in conn.execute(query))


def _write_links(conn: Connection, breach_id: int, links: Mapping[str, list[int]]) -> None:
    rows = [
        {"breach_id": breach_id, "kind": k, "ref_id": i} for k, ids in links.items() for i in ids
    ]
    if rows:
        conn.execute(insert(breach_links), rows)


def _link_counts(links: Mapping[str, list[int]]) -> dict[str, int]:
    return {kind: len(ids) for kind, ids in links.items()}


def _subject_refs(dbs: Databases, emails: Iterable[str]) -> list[str]:
    refs: list[str] = []
    for email in emails or ():
        if not str(email).strip():
            continue
        ref = audit.keyed_hash(dbs, normalised_email(str(email)))
        if ref not in refs:
            refs.append(ref)
    return refs


def _write_subjects(conn: Connection, breach_id: int, refs: list[str], now: datetime) -> None:
    if refs:
        conn.execute(
            insert(breach_subjects),
            [{"breach_id": breach_id, "subject_ref": r, "added_at": now} for r in refs],
        )


def _row(conn: Connection, breach_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(breaches).where(breaches.c.id == breach_id)).mappings().first()
    return dict(row) if row else None


def _missing(row: Mapping[str, Any] | None) -> str | None:
    return "There is no such breach." if row is None else None


def _save(conn: Connection, row: Mapping[str, Any], changes: dict[str, Any], now) -> None:
    """Write `changes` guarded by the version read under the lock (a second writer that
    slipped past the lock would update nothing)."""
    done = conn.execute(
        update(breaches)
        .where(breaches.c.id == row["id"], breaches.c.version == row["version"])
        .values(**changes, updated_at=now, version=row["version"] + 1)
    )
    if done.rowcount != 1:
        raise RuntimeError(f"breach {row['id']} changed underneath the action")


def _event(conn: Connection, breach_id: int, actor: str, event: str, details, now) -> None:
    conn.execute(
        insert(breach_events).values(
            breach_id=breach_id,
            occurred_at=now,
            actor=actor,
            event=event,
            details=audit.canonical_json({k: v for k, v in details.items() if v is not None}),
        )
    )


def _audit(conn, actor, action, rule, breach_id, now, details, counts=None) -> None:
    audit.append(
        conn,
        actor=actor,
        action=action,
        rule=rule,
        store="ledger",
        target=f"breach:{breach_id}",
        counts=counts or {"breaches": 1},
        details=details,
        now=now,
    )
