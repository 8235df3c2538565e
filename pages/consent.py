"""Consent: the rate per purpose on a chosen day, the monthly trend, and withdrawals
(RULES.md R20, R21). Needs the consent database."""

from __future__ import annotations

import math

import streamlit as st

from data_access import cached, rules
from pages import _charts as charts
from pages import _ui as ui

PAGE = "consent"
PERCENT = st.column_config.NumberColumn("rate", format="percent")
DEFINITIONS = """
- **Subject**: whoever a consent event is about: the account if the event has one, else the
  e-mail address (lower-case), else the website visitor id (R20).
- **Subjects**: distinct subjects with any event for the purpose on or before the day.
- **Granted / withdrawn**: subjects whose latest event on or before the day (Europe/Oslo
  date; a tie goes to the later event) grants or withdraws consent.
- **Rate**: granted ÷ subjects. A purpose without subjects has no rate (shown as "no rate",
  never 0 %) (R21).
- **Rate at month end**: the rate on the month's last day (for the current month, on the
  end date).
- **Grants and withdrawals per month**: events, not people: one person who changes their
  mind twice counts twice.
"""

ui.page_header(
    "Consent",
    stores=("consent",),
    caption="Consent is recorded per purpose as append-only events (RULES.md R20).",
)
as_of = ui.as_of()

with st.form("consent_filters"):
    left, right = st.columns(2)
    rates_on = left.date_input(
        "Rates on (empty = the as-of date)", value=None, key="consent_rates_on", format="YYYY-MM-DD"
    )
    months = right.number_input(
        "Trend: months", min_value=1, max_value=60, value=12, step=1, key="consent_trend_months"
    )
    st.form_submit_button("Apply")

rates_on = rates_on or as_of
trend_start = rules.add_months(rates_on.replace(day=1), -(int(months) - 1))
rates = ui.fetch(cached.consent_rates, rates_on)
trend = ui.fetch(cached.consent_trend, trend_start, rates_on)
withdrawn = ui.fetch(cached.withdrawals, trend_start, rates_on)

with st.expander("What the figures mean"):
    st.markdown(DEFINITIONS)

if rates["subjects"].sum() == 0:
    ui.empty_state(f"No consent events on or before {rates_on.isoformat()}.")
    st.stop()

st.subheader(f"Consent rate per purpose on {rates_on.isoformat()}")
for column, row in zip(st.columns(len(rates)), rates.itertuples(), strict=True):
    has_rate = row.subjects and not math.isnan(row.rate)
    column.metric(
        row.purpose.replace("_", " "),
        f"{row.rate:.1%}" if has_rate else "no rate",
        help=f"{row.granted:,} granted, {row.withdrawn:,} withdrawn of {row.subjects:,} subjects",
    )
ui.table(
    rates,
    page=PAGE,
    name="rates",
    filters={"rates_on": rates_on},
    columns=["purpose", "subjects", "granted", "withdrawn", "rate"],
    personal=False,
    column_config={"rate": PERCENT},
)

st.subheader(f"Trend, {trend_start.isoformat()} to {rates_on.isoformat()}")
st.plotly_chart(charts.consent_rate_trend(trend), key="consent_rate_chart")
st.plotly_chart(charts.consent_events_per_month(trend), key="consent_events_chart")
ui.table(
    trend,
    page=PAGE,
    name="trend",
    filters={"start": trend_start, "end": rates_on},
    columns=["month", "purpose", "granted_events", "withdrawn_events", "rate_at_month_end"],
    personal=False,
    column_config={"rate_at_month_end": st.column_config.NumberColumn(format="percent")},
)

st.subheader("Withdrawals by source and notice version")
if withdrawn.empty:
    ui.empty_state("No withdrawals in this period.")
else:
    ui.table(
        withdrawn,
        page=PAGE,
        name="withdrawals",
        filters={"start": trend_start, "end": rates_on},
        personal=False,
    )
