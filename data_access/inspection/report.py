"""The DPO's yearly report to management (GDPR art. 38(3): the DPO reports to the highest
management level; art. 39: what the DPO monitors and advises on).

The same figures as the inspection pack, over one calendar year (Oslo dates; a year still
running ends on `as_of`), with trend charts (data-subject requests answered per month,
consent rates at month end, records deleted per month), the findings standing at the year's
end and what was done in the year (the audit log's actions), in every language of
`letters.languages`, as HTML and A4 PDF, with the CSV files and chart images beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd
from sqlalchemy import func, select

from data_access import audit, consent, documents, export, findings, register, requests, stores
from data_access import ledger_tables as lt
from data_access.clock import day_end_utc, day_start_utc
from data_access.documents import Section
from data_access.engines import Databases
from data_access.inspection import charts, consent_part, requests_part, retention_part
from data_access.inspection.assemble import Progress, context, zipped
from data_access.inspection.parts import Context, count_words, percent, shown, text

ACTION_COLUMNS = ["action", "entries", "actors"]
AUDIT_ACTION = "prepare_dpo_report"


def year_period(year: int, as_of: date) -> tuple[date, date]:
    """(1 January, 31 December or `as_of` if earlier) of `year`. Raises ValueError for a
    year that has not begun on `as_of`."""
    start = date(year, 1, 1)
    if start > as_of:
        raise ValueError(f"The year {year} has not begun on {as_of.isoformat()}.")
    return start, min(date(year, 12, 31), as_of)


def actions_in_period(ctx: Context) -> pd.DataFrame:
    """What was done: audit entries written in the period per action. Columns: action,
    entries, actors (distinct, comma-separated). Most frequent first."""
    log = lt.audit_log.c
    query = (
        select(log.action, log.actor, func.count())
        .where(log.occurred_at >= day_start_utc(ctx.period_start),
               log.occurred_at < day_end_utc(ctx.period_end))
        .group_by(log.action, log.actor)
        .order_by(log.action, log.actor)
    )  # fmt: skip
    with ctx.dbs.ledger.connect() as conn:
        rows = conn.execute(query).all()
    grouped: dict[str, list] = {}
    for action, actor, n in rows:
        entry = grouped.setdefault(action, [0, []])
        entry[0] += int(n)
        entry[1].append(actor)
    frame = pd.DataFrame([[a, n, ", ".join(who)] for a, (n, who) in grouped.items()],
                         columns=ACTION_COLUMNS)  # fmt: skip
    return frame.sort_values(["entries", "action"], ascending=[False, True], ignore_index=True)


def retention_by_month(runs: pd.DataFrame) -> pd.DataFrame:
    """Records changed per month and rule. Columns: month (first day), rule, records."""
    if runs.empty:
        return pd.DataFrame(columns=["month", "rule", "records"])
    months = runs.assign(month=[d.replace(day=1) for d in runs["as_of"]])
    return months.groupby(["month", "rule"], as_index=False)["records"].sum()


class YearlyData:
    """Every table and figure of one year's report, read once for all languages."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.requests = requests_part.requests_in_period(ctx)
        self.monthly = requests.closure_metrics(ctx.dbs, ctx.period_start, ctx.period_end)
        self.consent = consent_part.consent_in_period(ctx)
        self.trend = consent.consent_trend(ctx.dbs, ctx.period_start, ctx.period_end)
        self.runs = retention_part.enforcement_runs(ctx)
        self.retention = retention_by_month(self.runs)
        self.holds = retention_part.holds_in_period(ctx)
        self.erasures = retention_part.erasure_receipts(ctx)
        self.policy_findings = findings.policy_findings(ctx.dbs, ctx.period_end)
        self.register_findings = register.findings(ctx.dbs, ctx.period_end)
        self.actions = actions_in_period(ctx)
        self.audit = consent_part.audit_verification(ctx).figures

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "requests-by-type": self.requests.tables["requests-by-type"],
            "requests-answered-by-month": self.monthly,
            "consent-trend": self.trend,
            "consent-rates": self.consent.tables["consent-rates"],
            "retention-by-month": self.retention,
            "enforcement-runs": self.runs,
            "legal-holds": self.holds,
            "erasure-receipts": self.erasures,
            "policy-findings": self.policy_findings,
            "register-findings": self.register_findings,
            "actions": self.actions,
        }

    def charted(self) -> list[str]:
        """The charts with something to show: an empty retention chart is left out."""
        return ["requests", "consent"] + (["retention"] if self.retention["records"].sum() else [])

    def figures(self, lang: str):
        every = {
            "requests": lambda: charts.on_time_chart(self.monthly, lang),
            "consent": lambda: charts.consent_chart(self.trend, lang),
            "retention": lambda: charts.retention_chart(self.retention, lang),
        }
        return {name: every[name]() for name in self.charted()}


def _title(lang: str, year: int) -> str:
    return text(
        lang, f"Personvernombudets årsrapport {year}", f"Data protection officer's report {year}"
    )


def report_document(
    data: YearlyData, lang: str, images: dict[str, bytes], missing: str = ""
) -> documents.Document:
    """The report in `lang`, with `images` (PNG by chart name) where charts belong; when
    the charts could not be rendered `missing` says why, in their place."""
    ctx, year = data.ctx, data.ctx.period_start.year
    req, con = data.requests.figures, data.consent.figures
    median = req["median_days_to_close"]
    median_text = "–" if pd.isna(median) else f"{median:.0f}"
    broken = int((data.policy_findings["severity"].isin(["high", "medium", "low"])).sum())
    summary = [
        text(lang,
             f"Henvendelser fra registrerte: {count_words(req['received'])} mottatt, "
             f"{count_words(req['answered'])} besvart, {percent(req['on_time_rate'])} i tide "
             f"(frist etter R2–R5), median {median_text} dager.",
             f"Data-subject requests: {count_words(req['received'])} received, "
             f"{count_words(req['answered'])} answered, {percent(req['on_time_rate'])} on time "
             f"(deadline under R2–R5), median {median_text} days."),
        text(lang,
             f"Sletting: {len(data.runs)} kjøringer, {int(data.runs['records'].sum()):,} poster; "
             f"{len(data.erasures)} slettinger etter krav; {len(data.holds)} juridiske hold.",
             f"Retention: {len(data.runs)} runs, {int(data.runs['records'].sum()):,} records; "
             f"{len(data.erasures)} erasures on request; {len(data.holds)} legal holds."),
        text(lang,
             f"Samtykke: {con['withdrawals']:,} tilbaketrekninger i året.",
             f"Consent: {con['withdrawals']:,} withdrawals in the year."),
        text(lang,
             f"Funn ved årets slutt: {broken} brutte løfter i personvernerklæringen, "
             f"{len(data.register_findings)} i registeret.",
             f"Findings at the year's end: {broken} broken promises of the privacy policy, "
             f"{len(data.register_findings)} in the register."),
        text(lang,
             f"Revisjonsloggen: {'intakt' if data.audit['intact'] else 'BRUTT'}, "
             f"{data.audit['entries']:,} oppføringer.",
             f"Audit log: {'intact' if data.audit['intact'] else 'BROKEN'}, "
             f"{data.audit['entries']:,} entries."),
    ]  # fmt: skip

    def chart(name: str, heading: str, source: str, table: pd.DataFrame | None = None) -> Section:
        image = images.get(name)
        notes = [missing] if missing and name in charted else []
        if name not in charted:
            notes = [text(lang, "Ingen kjøringer i året.", "No runs in the year.")]
        caption = text(lang, f"Kilde: {source}", f"Source: {source}") if image else ""
        return Section(heading=heading, paragraphs=notes, table=table, image=image,
                       image_caption=caption)  # fmt: skip

    charted = set(data.charted())
    monthly = data.monthly.assign(on_time_rate=data.monthly["on_time_rate"].map(percent))
    sections = [
        Section(heading=text(lang, "Sammendrag", "Summary"), paragraphs=summary),
        chart("requests", text(lang, "Henvendelser fra registrerte", "Data-subject requests"),
              "requests-answered-by-month.csv", shown(monthly, lang)),
        chart("consent", text(lang, "Samtykke", "Consent"), "consent-trend.csv",
              shown(data.consent.tables["consent-rates"].assign(
                  rate=data.consent.tables["consent-rates"]["rate"].map(percent)), lang)),
        chart("retention", text(lang, "Sletting", "Retention"), "retention-by-month.csv"),
        Section(heading=text(lang, "Funn: personvernerklæringen mot virkeligheten",
                             "Findings: the privacy policy against reality"),
                table=shown(data.policy_findings[["severity", "area", "reality", "count", "rule"]], lang)),
        Section(heading=text(lang, "Funn i registeret", "Register findings"),
                table=shown(data.register_findings, lang) if len(data.register_findings) else None,
                paragraphs=[] if len(data.register_findings) else [text(lang, "Ingen funn.", "No findings.")]),
        Section(heading=text(lang, "Hva som ble gjort i året", "What was done in the year"),
                paragraphs=[text(lang, "Handlinger i revisjonsloggen, med hvem som utførte dem.",
                                 "Actions in the audit log, with who took them.")],
                table=shown(data.actions, lang) if len(data.actions) else None),
    ]  # fmt: skip
    controller = ctx.letters.controller_name
    return documents.Document(
        title=_title(lang, year),
        sections=sections,
        lang=lang,
        subtitle=f"{controller} · {ctx.period_label(lang)} · "
        + text(lang, "Til ledelsen (art. 38 nr. 3)", "To management (art. 38(3))"),
        footer=f"{controller} · {_title(lang, year)} · {ctx.as_of.isoformat()}",
    )


def charts_for(
    data: YearlyData, languages: Sequence[str]
) -> tuple[dict[str, dict[str, bytes]], str]:
    """({lang: {chart name: PNG}}, "" or why the charts are missing)."""
    try:
        rendered = charts.render(
            {
                f"{lang}:{name}": fig
                for lang in languages
                for name, fig in data.figures(lang).items()
            }
        )
    except charts.ChartsUnavailable as exc:
        return {lang: {} for lang in languages}, str(exc)
    images: dict[str, dict[str, bytes]] = {lang: {} for lang in languages}
    for key, png in rendered.items():
        lang, name = key.split(":", 1)
        images[lang][name] = png
    return images, ""


@stores.writes(*stores.AUDIT)
def dpo_report(
    dbs: Databases, *, year: int, actor: str, as_of: date, progress: Progress | None = None
) -> bytes:
    """The yearly report for `year` prepared on `as_of` by `actor`, as ZIP bytes:
    `dpo-report-<year>.<lang>.html|pdf` per language, `charts/<name>.<lang>.png` and one CSV
    per table. Audited (action "prepare_dpo_report"). Raises ValueError for a year that has
    not begun on `as_of`. Without a browser for the charts the report says so in their place.
    """
    start, end = year_period(year, as_of)
    ctx = context(dbs, period_start=start, period_end=end, as_of=as_of)
    if progress:
        progress(0.1, "Reading the year's figures")
    data = YearlyData(ctx)
    if progress:
        progress(0.5, "Rendering the charts")
    images, why = charts_for(data, ctx.languages)
    files: dict[str, bytes] = {}
    for lang in ctx.languages:
        note = (
            text(lang, f"Diagrammet mangler: {why}", f"The chart is missing: {why}") if why else ""
        )
        doc = report_document(data, lang, images[lang], note)
        files[f"dpo-report-{year}.{lang}.html"] = documents.to_html(doc).encode("utf-8")
        files[f"dpo-report-{year}.{lang}.pdf"] = documents.to_pdf(doc)
        for name, png in images[lang].items():
            files[f"charts/{name}.{lang}.png"] = png
    for name, frame in data.tables().items():
        files[f"{name}.csv"] = export.to_csv_bytes(frame)
    _record(ctx, actor=actor, files=len(files))
    if progress:
        progress(1.0, "Done")
    return zipped(files, as_of)


def _record(ctx: Context, *, actor: str, files: int) -> None:
    """Audit the report's preparation and anchor the chain."""
    with ctx.dbs.ledger.begin() as conn:
        audit.append(conn, actor=actor, action=AUDIT_ACTION, target=f"year:{ctx.period_start.year}",
                     counts={"files": files}, details={"as_of": ctx.as_of.isoformat()})  # fmt: skip
    audit.anchor_now(ctx.dbs)
