"""Inspection pack: the answer to Datatilsynet's written control for a period, previewed
section by section and prepared as one ZIP (HTML, PDF and CSV in Norwegian and English), and
the DPO's yearly report to management (GDPR art. 5(2), 30, 38(3), 39). Needs every database.

Preparing either is an action of the DPO role, audited ("prepare_inspection_pack",
"prepare_dpo_report"); that entry records the download the session then offers.
"""

from __future__ import annotations

from datetime import date, timedelta

import streamlit as st

from data_access import cached, failures, inspection, rules
from data_access.settings import STORES
from pages import _actions
from pages import _gate as gate
from pages import _ui as ui

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "inspection-pack"
PACK_KEY = "inspection_pack_prepared"
REPORT_KEY = "inspection_report_prepared"
LANGUAGE_NAMES = {"nb": "Norsk", "en": "English"}

ui.page_header(
    "Inspection pack",
    stores=STORES,
    caption="Everything Datatilsynet asks for in a written control, from the same data as "
    "the other pages: the record of processing, recipients and processors, cookies, "
    "data-subject requests, retention evidence, receipts, consent and the audit log. "
    "Dates are Europe/Oslo; data subjects appear only by pseudonym.",
)

today = ui.today()
# Defaults through session state, not `value=`: ui.keep_widget_values writes the values
# back on every run, and a widget with both would warn after a page switch.
st.session_state.setdefault("inspection_start", rules.add_months(today, -12) + timedelta(days=1))
st.session_state.setdefault("inspection_end", today)
with st.form("inspection_period"):
    left, right = st.columns(2)
    start = left.date_input("Period from", key="inspection_start", format="YYYY-MM-DD")
    end = right.date_input("Period to", key="inspection_end", format="YYYY-MM-DD")
    st.form_submit_button("Show the period")

if not isinstance(start, date) or not isinstance(end, date):
    st.error("Enter both dates of the period.")
    st.stop()
try:
    inspection.context(cached.databases(), period_start=start, period_end=end, as_of=today)
except ValueError as exc:
    st.error(f"{ui.escape_markdown(exc)} Choose another period.", icon="📅")
    st.stop()

period = {"period_start": start.isoformat(), "period_end": end.isoformat()}
ui.refresh_consent_rollup()  # the consent section reads the roll-up
parts = ui.fetch(cached.inspection_parts, start, end, today)
languages = list(dict.fromkeys(p for part in parts for p in part.documents))
language = st.radio(
    "Preview in",
    languages,
    format_func=lambda code: LANGUAGE_NAMES.get(code, code),
    horizontal=True,
    key="inspection_language",
)

st.subheader("Sections")
st.caption(f"{len(parts)} sections for {start.isoformat()} – {end.isoformat()}.")


def show_part(part: inspection.Part) -> None:
    """One section: its document's headings and text, then each table behind it (as its
    CSV file holds it) with the usual export."""
    document = part.documents[language]
    with st.expander(f"{part.key} · {part.titles[language]}", expanded=False):
        st.caption(part.summaries[language])
        for section in document.sections:
            st.markdown(f"**{ui.escape_markdown(section.heading)}**")
            for paragraph in section.paragraphs:
                st.write(ui.escape_markdown(paragraph))
        for name, frame in part.tables.items():
            st.text(f"{part.key}/{name}.csv")
            if frame.empty:
                ui.empty_state("No rows in the period.")
                continue
            ui.table(frame, page=PAGE, name=f"{part.key}-{name}", filters=period)


for part in parts:
    show_part(part)


def prepare(key: str, build, file_name: str, what: str) -> None:
    """Run `build(progress)` with a progress bar, keep its ZIP for the download, rerun."""
    bar = st.progress(0.0, text=f"Preparing the {what}…")

    def progress(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=message)

    try:
        data = build(progress)
    except ValueError as exc:
        ui.flash(f"The {what} was not prepared: {ui.escape_markdown(exc)}", "error")
    except Exception as exc:
        if not cached.is_database_error(exc):
            raise
        # In words, values blanked; the SQL goes to the server log only.
        ui.flash(
            f"The {what} was not prepared: could not read the data: "
            f"{ui.escape_markdown(failures.in_words(exc))}",
            "error",
        )
    else:
        st.session_state[key] = {"data": data, "file_name": file_name}
        ui.flash(f"Prepared {file_name}; the preparation is recorded in the audit log.")
    st.rerun()


def download(key: str, button_key: str) -> None:
    prepared = st.session_state.get(key)
    if prepared:
        st.download_button(
            f"Download {prepared['file_name']}",
            data=prepared["data"],
            file_name=prepared["file_name"],
            mime="application/zip",
            key=button_key,
            on_click="ignore",
            icon=":material/download:",
        )


if _actions.actions_header("Prepare"):
    st.caption(
        "One ZIP with a cover letter and, per section, the document in both languages as "
        "HTML and PDF and the CSV files behind it. Only the DPO role prepares and downloads it."
    )
    if st.button("Prepare the inspection pack", key="inspection_prepare", type="primary"):
        name = f"inspection-pack-{start.isoformat()}-{end.isoformat()}.zip"
        prepare(
            PACK_KEY,
            lambda progress: _actions.run(
                inspection.pack,
                cached.databases(),
                period_start=start,
                period_end=end,
                actor=ui.actor(),
                as_of=today,
                progress=progress,
            ),
            name,
            "inspection pack",
        )
    download(PACK_KEY, "inspection_download")

    st.subheader("Yearly report to management")
    st.caption(
        "The DPO's report (art. 38(3), 39): the year's figures with trend charts, the "
        "findings at the year's end and what was done, in both languages. A year still "
        "running ends today."
    )
    years = list(range(today.year, today.year - 5, -1))
    year = st.selectbox("Year", years, key="inspection_report_year")
    if st.button("Prepare the yearly report", key="inspection_prepare_report"):
        prepare(
            REPORT_KEY,
            lambda progress: _actions.run(
                inspection.dpo_report,
                cached.databases(),
                year=year,
                actor=ui.actor(),
                as_of=today,
                progress=progress,
            ),
            f"dpo-report-{year}.zip",
            "yearly report",
        )
    download(REPORT_KEY, "inspection_report_download")
