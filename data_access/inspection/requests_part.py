"""Pack section: the data-subject requests of the period (GDPR art. 12-21; RULES.md R2-R6).

The on-time rate and the median days to close are `requests.closure_metrics` for the
period, the Data-subject requests page's own figures: a request was on time when closed on
or before its working-day-correct deadline (R2: one month, rolled past weekends and
Norwegian holidays; R3/R4: a valid extension; R5: the identity pause; R6: the base deadline
for a refusal), never "30 days". Requests are shown by id; reasons are the DPO's own words,
with the data subject's e-mail and name replaced should they appear in them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from data_access import requests
from data_access.clock import day_end_utc, day_start_utc, oslo_date
from data_access.documents import Section
from data_access.inspection.parts import (
    Context,
    Part,
    count_words,
    document,
    empty_note,
    percent,
    shown,
    text,
)
from data_access.ledger_tables import request_cases
from data_access.requests.queries import _chunks
from data_access.tables import REQUEST_TYPES
from data_access.tables import data_subject_requests as intake

BY_TYPE_COLUMNS = ["request_type", "received", "answered"]
EXTENSION_COLUMNS = ["request_id", "request_type", "received_on", "notified_on", "reason", "due_on"]
REFUSAL_COLUMNS = ["request_id", "request_type", "received_on", "closed_on", "reason"]
REDACTED = "[redacted]"


def received_by_type(ctx: Context) -> dict[str, int]:
    """Requests received (R1: Oslo date of receipt) in the period, per request type."""
    query = (
        select(intake.c.request_type, func.count())
        .where(
            intake.c.received_at >= day_start_utc(ctx.period_start),
            intake.c.received_at < day_end_utc(ctx.period_end),
        )
        .group_by(intake.c.request_type)
        .order_by(intake.c.request_type)
    )
    with ctx.dbs.support.connect() as conn:
        return {str(kind): int(n) for kind, n in conn.execute(query)}


def _cases(ctx: Context, condition) -> list[dict[str, Any]]:
    query = select(request_cases).where(condition).order_by(request_cases.c.request_id)
    with ctx.dbs.ledger.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def _intake(ctx: Context, request_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Intake rows by id: type, receipt date and (to keep them out of the pack) who."""
    found: dict[int, dict[str, Any]] = {}
    columns = (intake.c.id, intake.c.request_type, intake.c.received_at, intake.c.subject_email,
               intake.c.subject_name)  # fmt: skip
    with ctx.dbs.support.connect() as conn:
        for chunk in _chunks(sorted(set(request_ids))):
            query = select(*columns).where(intake.c.id.in_(chunk)).order_by(intake.c.id)
            for row in conn.execute(query).mappings():
                found[int(row["id"])] = dict(row)
    return found


def without_subject(value: Any, *people: Any) -> str:
    """`value` as text with each of `people` (e-mails, names) replaced by "[redacted]",
    case-insensitively: a pack never names a data subject (R18)."""
    result = "" if value is None else str(value)
    for person in people:
        if person and str(person).strip():
            result = re.sub(re.escape(str(person).strip()), REDACTED, result, flags=re.I)
    return result


def extensions(ctx: Context) -> pd.DataFrame:
    """Extensions whose notice to the data subject is dated in the period (R3, R4).

    Columns: request_id, request_type, received_on, notified_on (Oslo dates), reason,
    due_on (the deadline on `ctx.as_of`: the extended one when the extension counts under
    R4, else the base one)."""
    notified = request_cases.c.extension_notified_on
    cases = _cases(ctx, notified.between(ctx.period_start, ctx.period_end))
    rows = _intake(ctx, [c["request_id"] for c in cases])
    out = []
    for case in cases:
        row = rows.get(case["request_id"])
        if row is None:
            continue
        received_on = oslo_date(row["received_at"])
        due_on = requests.deadline(received_on, case, ctx.as_of, ctx.dbs.policy)[0]
        reason = without_subject(
            case["extension_reason"], row["subject_email"], row["subject_name"]
        )
        out.append([case["request_id"], row["request_type"], received_on,
                    case["extension_notified_on"], reason, due_on])  # fmt: skip
    return pd.DataFrame(out, columns=EXTENSION_COLUMNS)


def refusals(ctx: Context) -> pd.DataFrame:
    """Requests refused (in full or in part) with `closed_on` in the period, with the
    written reason (R6, R7). Columns: request_id, request_type, received_on, closed_on
    (Oslo dates), reason."""
    closed = request_cases.c.closed_on.between(ctx.period_start, ctx.period_end)
    cases = _cases(ctx, closed & (request_cases.c.status == "refused"))
    rows = _intake(ctx, [c["request_id"] for c in cases])
    out = []
    for case in cases:
        row = rows.get(case["request_id"])
        if row is None:
            continue
        reason = without_subject(case["outcome_note"], row["subject_email"], row["subject_name"])
        out.append([case["request_id"], row["request_type"], oslo_date(row["received_at"]),
                    case["closed_on"], reason])  # fmt: skip
    return pd.DataFrame(out, columns=REFUSAL_COLUMNS)


def by_type(ctx: Context) -> pd.DataFrame:
    """Columns: request_type, received (in the period), answered (completed or refused
    with closed_on in the period). Every type of `tables.REQUEST_TYPES`, in that order."""
    received = received_by_type(ctx)
    closed = request_cases.c.closed_on.between(ctx.period_start, ctx.period_end)
    cases = _cases(ctx, closed & request_cases.c.status.in_(requests.metrics.ANSWERED))
    types = {
        i: r["request_type"] for i, r in _intake(ctx, [c["request_id"] for c in cases]).items()
    }
    answered = pd.Series(list(types.values()), dtype=object).value_counts().to_dict()
    kinds = list(REQUEST_TYPES) + sorted(set(received) - set(REQUEST_TYPES))
    rows = [[k, received.get(k, 0), int(answered.get(k, 0))] for k in kinds]
    return pd.DataFrame(rows, columns=BY_TYPE_COLUMNS)


def requests_in_period(ctx: Context) -> Part:
    """The section: counts by type, on-time rate (R2-R6), extensions, refusals, median days."""
    metrics = requests.closure_metrics(ctx.dbs, ctx.period_start, ctx.period_end)
    types, extended, refused = by_type(ctx), extensions(ctx), refusals(ctx)
    figures = {
        "received": int(types["received"].sum()),
        "answered": metrics.attrs["answered"],
        "on_time_rate": metrics.attrs["on_time_rate"],
        "median_days_to_close": metrics.attrs["median_days_to_close"],
        "extensions": len(extended),
        "refusals": len(refused),
    }
    docs = {lang: _document(ctx, lang, figures, types, metrics, extended, refused)
            for lang in ctx.languages}  # fmt: skip
    return Part(
        key="03-data-subject-requests",
        titles={lang: _title(lang) for lang in ctx.languages},
        summaries={
            lang: text(
                lang,
                "Henvendelser fra registrerte i perioden: antall per type, andel besvart i "
                "tide etter fristen med virkedager (R2–R5), utsettelser, avslag og median tid.",
                "Data-subject requests in the period: counts by type, the on-time rate against "
                "the working-day deadline (R2–R5), extensions, refusals and the median time.",
            )
            for lang in ctx.languages
        },
        documents=docs,
        tables={
            "requests-by-type": types,
            "requests-answered-by-month": metrics,
            "extensions": extended,
            "refusals": refused,
        },
        figures=figures,
    )


def _title(lang: str) -> str:
    return text(lang, "Henvendelser fra registrerte", "Data-subject requests")


def _document(ctx, lang, figures, types, metrics, extended, refused):
    median = figures["median_days_to_close"]
    median_text = "–" if pd.isna(median) else f"{median:.0f}"
    summary = text(
        lang,
        f"Mottatt: {count_words(figures['received'])}. Besvart: "
        f"{count_words(figures['answered'])}. Andel i tide: {percent(figures['on_time_rate'])}. "
        f"Median dager fra mottak til svar: {median_text}.",
        f"Received: {count_words(figures['received'])}. Answered: "
        f"{count_words(figures['answered'])}. On time: {percent(figures['on_time_rate'])}. "
        f"Median days from receipt to answer: {median_text}.",
    )
    rule = text(
        lang,
        "Fristen er én måned fra mottaksdagen, flyttet til neste virkedag (helg og norske "
        "helligdager), forlenget med inntil to måneder ved gyldig utsettelse og med dagene "
        "det ventes på identitet (art. 12 nr. 3; R2–R5). Avslag skal gis innen den første "
        "fristen (R6).",
        "The deadline is one month from the day of receipt, moved to the next working day "
        "(weekends and Norwegian public holidays), extended by up to two months by a valid "
        "extension and by the days spent waiting for identity (art. 12(3); R2–R5). A refusal "
        "is due by the first deadline (R6).",
    )
    monthly = metrics.assign(on_time_rate=metrics["on_time_rate"].map(percent))
    sections = [
        Section(heading=text(lang, "Oppsummering", "Summary"), paragraphs=[summary, rule]),
        Section(heading=text(lang, "Antall per type", "Counts by type"), table=shown(types, lang)),
        Section(
            heading=text(lang, "Besvart per måned", "Answered per month"),
            table=shown(monthly, lang),
        ),  # fmt: skip
        Section(
            heading=text(lang, "Utsettelser (art. 12 nr. 3)", "Extensions (art. 12(3))"),
            paragraphs=[] if len(extended) else [empty_note(lang)],
            table=shown(extended, lang) if len(extended) else None,
        ),
        Section(
            heading=text(lang, "Avslag (art. 12 nr. 4)", "Refusals (art. 12(4))"),
            paragraphs=[] if len(refused) else [empty_note(lang)],
            table=shown(refused, lang) if len(refused) else None,
        ),
    ]
    return document(ctx, lang, _title(lang), sections)
