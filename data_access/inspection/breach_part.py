"""Pack sections on breaches and on the scheduled duties.

- `breach_log`: every personal-data breach the company became aware of in the period, also
  those not notified, with the decisions and their reasoning (GDPR art. 33(5); RULES.md
  R50-R53). Titles and descriptions are left out: they are free text that may name a
  person; the reasoning is the DPO's own and stays.
- `daily_duties`: the retention schedule ("sletteplan") with each category's last
  enforcement, and the daily runs of the period with their outcome (issue "the daily run").
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from data_access import ledger_tables as lt
from data_access.clock import day_end_utc, day_start_utc
from data_access.daily import nightly, schedule
from data_access.documents import Section
from data_access.inspection.parts import Context, Part, document, empty_note, shown, text

BREACH_COLUMNS = [
    "breach_id", "status", "aware_at", "due_at", "category", "risk", "risk_reasoning",
    "notify_decision", "notify_reasoning", "notified_at", "notification_reference",
    "delay_reasons", "subjects_decision", "subjects_reasoning", "subjects_exemption",
    "subjects_count", "subjects_estimated", "report_channel", "closed_at",
]  # fmt: skip
# The document's table (A4 width); the reasoning follows as one paragraph per breach, and
# the CSV holds every column.
SHOWN_COLUMNS = ["breach_id", "status", "aware_at", "risk", "notify_decision", "notified_at",
                 "subjects_decision"]  # fmt: skip
REASONING = (
    ("risk_reasoning", "Risikovurdering", "Risk assessment"),
    ("notify_reasoning", "Melding til Datatilsynet", "Notification to Datatilsynet"),
    ("delay_reasons", "Grunner til forsinkelse", "Reasons for the delay"),
    ("subjects_reasoning", "De registrerte (art. 34)", "Data subjects (art. 34)"),
)
RUN_COLUMNS = ["run_id", "as_of", "started_at", "finished_at", "outcome", "error"]


def breaches_in_period(ctx: Context) -> pd.DataFrame:
    """Breaches with `aware_at` inside the period (Oslo days), oldest first; `BREACH_COLUMNS`
    (times naive UTC)."""
    table = lt.breaches
    query = (
        select(*(table.c[c if c != "breach_id" else "id"] for c in BREACH_COLUMNS))
        .where(
            table.c.aware_at >= day_start_utc(ctx.period_start),
            table.c.aware_at <= day_end_utc(ctx.period_end),
        )
        .order_by(table.c.aware_at, table.c.id)
    )
    with ctx.dbs.ledger.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=BREACH_COLUMNS)


def breach_log(ctx: Context) -> Part:
    """08: the breach log of the period. Figures: breaches, notified, not_notified, late."""
    frame = breaches_in_period(ctx)
    decision = frame["notify_decision"].map(lambda v: None if pd.isna(v) else bool(v))
    notified = int((decision == True).sum())  # noqa: E712 (None is "not decided")
    decided_not = int((decision == False).sum())  # noqa: E712
    late = int(frame["delay_reasons"].notna().sum()) if len(frame) else 0
    docs = {}
    for lang in ctx.languages:
        title = text(lang, "Avviksprotokoll", "Breach log")
        summary = text(
            lang,
            f"{len(frame)} brudd på personopplysningssikkerheten i perioden; {notified} meldt "
            f"til Datatilsynet, {decided_not} ikke meldt (med begrunnelse), {late} meldt etter "
            "72 timer (med grunnene til forsinkelsen).",
            f"{len(frame)} personal-data breaches in the period; {notified} notified to "
            f"Datatilsynet, {decided_not} not notified (with reasoning), {late} notified after "
            "72 hours (with the reasons for the delay).",
        )
        sections = [
            Section(
                heading=title,
                paragraphs=[summary] if len(frame) else [empty_note(lang)],
                table=shown(frame[SHOWN_COLUMNS], lang) if len(frame) else None,
            ),
            *(
                Section(
                    heading=text(lang, f"Brudd {row.breach_id}", f"Breach {row.breach_id}"),
                    paragraphs=_reasoning(row, lang),
                )
                for row in frame.itertuples()
            ),
        ]
        docs[lang] = document(ctx, lang, title, sections)
    return Part(
        key="08-breach-log",
        titles={lang: text(lang, "Avviksprotokoll", "Breach log") for lang in ctx.languages},
        summaries={
            lang: text(
                lang,
                "Hvert brudd i perioden med vurdering, beslutninger og begrunnelser (art. 33(5)).",
                "Every breach of the period with its assessment, decisions and reasoning "
                "(art. 33(5)).",
            )
            for lang in ctx.languages
        },
        documents=docs,
        tables={"breaches": frame},
        figures={
            "breaches": len(frame),
            "notified": notified,
            "not_notified": decided_not,
            "late": late,
        },
    )


def _reasoning(row, lang: str) -> list[str]:
    missing = text(lang, "ikke registrert", "not recorded")
    return [
        f"{text(lang, nb, en)}: {getattr(row, column) or missing}"
        for column, nb, en in REASONING
        if column != "delay_reasons" or getattr(row, column)
    ]


def runs_in_period(ctx: Context) -> pd.DataFrame:
    """The daily runs whose Oslo day lies in the period, oldest first (`RUN_COLUMNS`)."""
    runs = nightly.latest_runs(ctx.dbs, limit=5000)
    inside = runs[(runs["as_of"] >= ctx.period_start) & (runs["as_of"] <= ctx.period_end)]
    return inside.sort_values("run_id").reset_index(drop=True)[RUN_COLUMNS]


def daily_duties(ctx: Context) -> Part:
    """09: the retention schedule as of the pack's day, and the daily runs of the period.
    Figures: categories, runs, failed_runs."""
    plan = schedule.retention_schedule(ctx.dbs, ctx.as_of).drop(columns=["page"])
    runs = runs_in_period(ctx)
    failed = int((runs["outcome"] == "failed").sum()) if len(runs) else 0
    docs = {}
    for lang in ctx.languages:
        title = text(lang, "Sletteplan og daglig kjøring", "Retention schedule and daily run")
        sections = [
            Section(
                heading=text(lang, "Sletteplan", "Retention schedule"),
                paragraphs=[
                    text(
                        lang,
                        "Hver kategori i personvernerklæringen med regel, rettslig grunnlag, "
                        "siste gjennomføring og hva som er forfalt.",
                        "Every category of the privacy policy with its rule, legal basis, "
                        "last enforcement and what is overdue.",
                    )
                ],
                table=shown(plan, lang),
            ),
            Section(
                heading=text(lang, "Daglige kjøringer i perioden", "Daily runs in the period"),
                paragraphs=[
                    text(
                        lang,
                        f"{len(runs)} kjøringer, {failed} med et steg som feilet.",
                        f"{len(runs)} runs, {failed} with a failed step.",
                    )
                ]
                if len(runs)
                else [empty_note(lang)],
                table=shown(runs, lang) if len(runs) else None,
            ),
        ]
        docs[lang] = document(ctx, lang, title, sections)
    return Part(
        key="09-daily-run",
        titles={
            lang: text(lang, "Sletteplan og daglig kjøring", "Retention schedule and daily run")
            for lang in ctx.languages
        },
        summaries={
            lang: text(
                lang,
                "Sletteplanen med siste gjennomføring per kategori, og periodens daglige "
                "kjøringer.",
                "The retention schedule with each category's last enforcement, and the "
                "period's daily runs.",
            )
            for lang in ctx.languages
        },
        documents=docs,
        tables={"retention-schedule": plan, "daily-runs": runs},
        figures={"categories": len(plan), "runs": len(runs), "failed_runs": failed},
    )
