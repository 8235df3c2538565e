"""Pack sections on consent (GDPR art. 7; ekomloven §3-15; RULES.md R20-R22) and on the
audit log (art. 5(2); R18).

Consent figures are the Consent page's functions: `consent.consent_rates` at the period's
end, `consent.withdrawals` over the period (summed per purpose and notice version) and the
R22 counts of processing without consent (counts only: the finding lists name people).
The audit section is `audit.verify_chain` (the Audit log page's check), the latest anchors
kept outside the ledger, and who acted in the period.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from data_access import audit, consent
from data_access import ledger_tables as lt
from data_access.audit_anchors import read_anchors
from data_access.clock import day_end_utc, day_start_utc
from data_access.documents import Section
from data_access.inspection.parts import (
    Context,
    Part,
    document,
    empty_note,
    percent,
    shown,
    text,
)

WITHDRAWAL_COLUMNS = ["purpose", "notice_version", "withdrawals"]
R22_COLUMNS = ["finding", "count"]
ACTOR_COLUMNS = ["actor", "entries", "actions", "first_at", "last_at"]
ANCHOR_COLUMNS = ["at", "entries", "head"]
LATEST_ANCHORS = 5


def withdrawals_by_version(ctx: Context) -> pd.DataFrame:
    """Withdrawal events in the period per purpose and notice version (R21). Columns:
    purpose, notice_version (None when the events carry none), withdrawals."""
    events = consent.withdrawals(ctx.dbs, ctx.period_start, ctx.period_end)
    if events.empty:
        return pd.DataFrame(columns=WITHDRAWAL_COLUMNS)
    grouped = events.groupby(["purpose", "notice_version"], dropna=False, sort=True)
    return grouped["withdrawals"].sum().reset_index()[WITHDRAWAL_COLUMNS]


def r22_counts(ctx: Context) -> pd.DataFrame:
    """Processing without consent up to the period's end (R22). Columns: finding, count."""
    counts = consent.processing_without_consent_counts(ctx.dbs, ctx.period_end)
    return pd.DataFrame(list(counts.items()), columns=R22_COLUMNS)


def consent_in_period(ctx: Context) -> Part:
    """The section: rates per purpose at period end, withdrawals by version, R22 counts."""
    rates = consent.consent_rates(ctx.dbs, ctx.period_end)
    withdrawn, r22 = withdrawals_by_version(ctx), r22_counts(ctx)
    figures = {
        "rates": dict(zip(rates["purpose"], rates["rate"], strict=True)),
        "withdrawals": int(withdrawn["withdrawals"].sum()) if len(withdrawn) else 0,
        "r22": dict(zip(r22["finding"], r22["count"], strict=True)),
    }
    docs = {}
    for lang in ctx.languages:
        shown_rates = rates.assign(rate=rates["rate"].map(percent))
        sections = [
            Section(
                heading=text(
                    lang,
                    f"Samtykke per formål {ctx.period_end.isoformat()}",
                    f"Consent per purpose on {ctx.period_end.isoformat()}",
                ),
                paragraphs=[
                    text(
                        lang,
                        "Andel = registrerte som har samtykket / registrerte med noen hendelse for "
                        "formålet; uten registrerte er det ingen andel (R21).",
                        "Rate = subjects whose consent is granted / subjects with any event for the "
                        "purpose; without subjects there is no rate (R21).",
                    )
                ],
                table=shown(shown_rates, lang),
            ),  # fmt: skip
            Section(
                heading=text(
                    lang,
                    "Tilbaketrekninger per versjon av informasjonen",
                    "Withdrawals by notice version",
                ),
                paragraphs=[] if len(withdrawn) else [empty_note(lang)],
                table=shown(withdrawn, lang) if len(withdrawn) else None,
            ),  # fmt: skip
            Section(
                heading=text(
                    lang, "Behandling uten samtykke (R22)", "Processing without consent (R22)"
                ),
                table=shown(r22, lang),
            ),  # fmt: skip
        ]
        docs[lang] = document(ctx, lang, _consent_title(lang), sections)
    return Part(
        key="06-consent",
        titles={lang: _consent_title(lang) for lang in ctx.languages},
        summaries={
            lang: text(
                lang,
                "Samtykkeandel per formål ved periodens slutt, tilbaketrekninger per versjon og "
                "behandling uten samtykke.",
                "Consent rates per purpose at the period's end, withdrawals by notice version and "
                "processing without consent.",
            )
            for lang in ctx.languages
        },  # fmt: skip
        documents=docs,
        tables={
            "consent-rates": rates,
            "withdrawals-by-notice-version": withdrawn,
            "processing-without-consent": r22,
        },  # fmt: skip
        figures=figures,
    )


def _consent_title(lang: str) -> str:
    return text(lang, "Samtykke", "Consent")


def actors_in_period(ctx: Context) -> pd.DataFrame:
    """Who acted in the period (audit entries written in the Oslo days' UTC bounds).
    Columns: actor, entries, actions (distinct, comma-separated), first_at, last_at (UTC)."""
    log = lt.audit_log.c
    query = (
        select(log.actor, log.action, func.count(), func.min(log.occurred_at), func.max(log.occurred_at))
        .where(log.occurred_at >= day_start_utc(ctx.period_start),
               log.occurred_at < day_end_utc(ctx.period_end))
        .group_by(log.actor, log.action)
        .order_by(log.actor, log.action)
    )  # fmt: skip
    with ctx.dbs.ledger.connect() as conn:
        rows = conn.execute(query).all()
    actors: dict[str, list] = {}
    for actor, action, n, first, last in rows:
        a = actors.setdefault(actor, [0, [], first, last])
        a[0] += int(n)
        a[1].append(action)
        a[2], a[3] = min(a[2], first), max(a[3], last)
    data = [[actor, n, ", ".join(actions), first, last]
            for actor, (n, actions, first, last) in actors.items()]  # fmt: skip
    return pd.DataFrame(data, columns=ACTOR_COLUMNS)


def latest_anchors(ctx: Context) -> pd.DataFrame:
    """The last LATEST_ANCHORS anchors in the anchor file, newest first. Columns: at (UTC),
    entries, head (SHA-256 hex). Empty when no anchor file is configured or written."""
    path = ctx.dbs.anchors_file
    anchors = read_anchors(Path(path), ctx.dbs.chain_key).anchors if path else []
    rows = [[a.at, a.entries, a.head] for a in reversed(anchors[-LATEST_ANCHORS:])]
    return pd.DataFrame(rows, columns=ANCHOR_COLUMNS)


def audit_verification(ctx: Context) -> Part:
    """The section: the chain's verification, its latest anchors and who acted."""
    report = audit.verify_chain(ctx.dbs)
    anchors, actors = latest_anchors(ctx), actors_in_period(ctx)
    figures = {"intact": report.ok, "entries": report.entries, "head": report.head,
               "first_broken": report.first_broken, "anchors": len(anchors),
               "actors": len(actors)}  # fmt: skip
    # One column of mixed figures, held as the text the CSV shows.
    verdict = pd.DataFrame(
        [["intact", "true" if report.ok else "false"], ["entries", str(report.entries)],
         ["head", report.head], ["first_broken", _text_or_none(report.first_broken)],
         ["latest_anchor", report.anchor.label if report.anchor else None]],
        columns=["figure", "value"],
    )  # fmt: skip
    docs = {}
    for lang in ctx.languages:
        said = (
            text(lang, "Kjeden er intakt: hver oppføring stemmer med innholdet og forgjengeren, "
                 "og loggen stemmer med hodet og hvert anker.",
                 "The chain is intact: every entry matches its content and predecessor, and the "
                 "log agrees with its head and every anchor.")
            if report.ok
            else text(lang, f"Kjeden er brutt ved oppføring {report.first_broken}.",
                      f"The chain is broken at entry {report.first_broken}.")
        )  # fmt: skip
        sections = [
            Section(
                heading=text(lang, "Kontroll av revisjonsloggen", "Verification of the audit log"),
                paragraphs=[
                    said,
                    text(
                        lang,
                        f"{report.entries:,} oppføringer, hode {report.head}.",
                        f"{report.entries:,} entries, head {report.head}.",
                    ),
                ]
                + list(report.problems)
                + list(report.warnings),
            ),  # fmt: skip
            Section(
                heading=text(lang, "Siste ankre utenfor loggen", "Latest anchors outside the log"),
                paragraphs=[] if len(anchors) else [text(lang, "Ingen ankre.", "No anchors.")],
                table=shown(anchors, lang) if len(anchors) else None,
            ),
            Section(
                heading=text(lang, "Hvem som handlet i perioden", "Who acted in the period"),
                paragraphs=[] if len(actors) else [empty_note(lang)],
                table=shown(actors, lang) if len(actors) else None,
            ),
        ]
        docs[lang] = document(ctx, lang, _audit_title(lang), sections)
    return Part(
        key="07-audit-log",
        titles={lang: _audit_title(lang) for lang in ctx.languages},
        summaries={
            lang: text(
                lang,
                "Kontroll av den hash-kjedede revisjonsloggen (intakt, antall, hode, siste ankre) "
                "og hvem som handlet.",
                "Verification of the hash-chained audit log (intact, entries, head, latest anchors) "
                "and who acted.",
            )
            for lang in ctx.languages
        },  # fmt: skip
        documents=docs,
        tables={"audit-verification": verdict, "audit-anchors": anchors, "audit-actors": actors},
        figures=figures,
    )


def _text_or_none(value) -> str | None:
    return None if value is None else str(value)


def _audit_title(lang: str) -> str:
    return text(lang, "Revisjonslogg", "Audit log")
