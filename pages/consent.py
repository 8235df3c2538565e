"""Consent: the rate per purpose on a chosen day (and a second day to compare), the monthly
trend, the breakdown by source and notice version, withdrawals in a period, processing
without consent, and the "Rebuild" of the roll-up (RULES.md R20-R22). Needs the consent
database and the ledger, which keeps the roll-up the figures come from."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from data_access import cached, clock, consent_rollup, rules
from pages import _actions as actions
from pages import _charts as charts
from pages import _gate as gate
from pages import _numbers as numbers
from pages import _ui as ui

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "consent"
DEFINITIONS = """
- **Subject**: whoever a consent event is about: the account if the event has one, else the
  e-mail address (lower-case), else the website visitor id (R20).
- **Subjects**: distinct subjects with any event for the purpose on or before the day.
- **Granted / withdrawn**: subjects whose latest event on or before the day (Europe/Oslo
  date; a tie goes to the later event, then to the higher event id) grants or withdraws
  consent.
- **Rate**: granted ÷ subjects. A purpose without subjects has no rate (shown as "no rate",
  never 0 %) (R21).
- **Rate at month end**: the rate on the month's last day (for the current month, on the
  end date).
- **Grants and withdrawals per month**, **by source**, **by notice version** and
  **withdrawals in the period**: events, not people: one person who changes their mind twice
  counts twice. Events are dated by their Europe/Oslo date.
- **Processing without consent** (R22): usage sessions recorded while the account's
  usage-statistics state was not granted, and newsletter subscribers (still subscribed on
  the day) without a granted newsletter state.
- The figures come from the roll-up the ledger keeps of the consent events; every visit to
  this page first adds the events that arrived since the last one. "Rebuild" computes it
  again from all events.
"""

ui.page_header(
    "Consent",
    stores=("consent", "ledger"),
    caption="Consent is recorded per purpose as append-only events (RULES.md R20).",
)
as_of = ui.as_of()

# New consent events since the last visit (cheap when there are none); the first visit
# builds the roll-up, with a progress bar.
refreshed = ui.refresh_consent_rollup()

# The default through session state, not `value=`: ui.keep_widget_values writes the value
# back on every run (to keep it across pages), and a widget given both warns.
st.session_state.setdefault("consent_trend_months", 12)
with st.form("consent_filters"):
    first, second, third = st.columns(3)
    rates_on = first.date_input(
        "Rates on (empty = the as-of date)", value=None, key="consent_rates_on", format="YYYY-MM-DD"
    )
    compare_on = second.date_input(
        "Compare with (optional)", value=None, key="consent_compare_on", format="YYYY-MM-DD"
    )
    months = third.number_input(
        "Trend: months", min_value=1, max_value=60, step=1, key="consent_trend_months"
    )
    first, second, third = st.columns(3)
    withdrawn_from = first.date_input(
        "Withdrawals from (empty = start of the trend)",
        value=None,
        key="consent_withdrawn_from",
        format="YYYY-MM-DD",
    )
    withdrawn_to = second.date_input(
        "Withdrawals to (empty = the rates day)",
        value=None,
        key="consent_withdrawn_to",
        format="YYYY-MM-DD",
    )
    by = third.radio(
        "Breakdown by",
        ["source", "notice_version"],
        key="consent_breakdown_by",
        horizontal=True,
        format_func=lambda v: v.replace("_", " "),
    )
    show_r22 = st.toggle(
        "Show processing without consent (R22): checks every usage session against the "
        "consent history, which takes seconds on large data",
        key="consent_show_r22",
    )
    st.form_submit_button("Apply")

rates_on = rates_on or as_of
trend_start = rules.add_months(rates_on.replace(day=1), -(int(months) - 1))
withdrawn_from = withdrawn_from or trend_start
withdrawn_to = withdrawn_to or rates_on
if withdrawn_from > withdrawn_to:
    st.error("The withdrawals period starts after it ends; showing the trend period instead.")
    withdrawn_from, withdrawn_to = trend_start, rates_on

rates = ui.fetch(cached.consent_rates, rates_on)
compared = ui.fetch(cached.consent_rates, compare_on) if compare_on else None
trend = ui.fetch(cached.consent_trend, trend_start, rates_on)
by_column = ui.fetch(cached.consent_breakdown, rates_on, by)
withdrawn = ui.fetch(cached.withdrawals, withdrawn_from, withdrawn_to)
without = ui.fetch(cached.processing_without_consent, rates_on) if show_r22 else None

with st.expander("What the figures mean"):
    st.markdown(DEFINITIONS)
if not refreshed.ready and refreshed.status == "building":
    st.info(
        "The consent roll-up is being rebuilt; until it is done these figures are computed "
        "from the events directly (slower).",
        icon="⏳",
    )

if rates["subjects"].sum() == 0:
    ui.empty_state(f"No consent events on or before {rates_on.isoformat()}.")
    st.stop()


def rate_text(row) -> str:
    return numbers.percent(row.rate) if row.subjects else "no rate"


st.subheader(f"Consent rate per purpose on {rates_on.isoformat()}")
before = compared.set_index("purpose") if compared is not None else None
for column, row in zip(st.columns(len(rates)), rates.itertuples(), strict=True):
    delta = None
    if before is not None:
        earlier = before.loc[row.purpose, "rate"]
        if not (math.isnan(row.rate) or math.isnan(earlier)):
            delta = f"{(row.rate - earlier) * 100:+.1f} pp since {compare_on.isoformat()}"
    column.metric(
        row.purpose.replace("_", " "),
        rate_text(row),
        delta=delta,
        help=f"{row.granted:,} granted, {row.withdrawn:,} withdrawn of {row.subjects:,} subjects",
    )
ui.table(
    numbers.as_percent(rates, ["rate"]),
    page=PAGE,
    name="rates",
    filters={"rates_on": rates_on},
    columns=["purpose", "subjects", "granted", "withdrawn", "rate"],
    personal=False,
    column_config={"rate": numbers.percent_column("Rate")},
)

if compared is not None:
    st.subheader(f"{rates_on.isoformat()} compared with {compare_on.isoformat()}")
    both = pd.concat(
        [rates.assign(day=rates_on.isoformat()), compared.assign(day=compare_on.isoformat())]
    )
    st.plotly_chart(charts.consent_rates_compared(both), key="consent_compare_chart")
    ui.table(
        numbers.as_percent(both, ["rate"]),
        page=PAGE,
        name="rates-compared",
        filters={"rates_on": rates_on, "compare_on": compare_on},
        columns=["day", "purpose", "subjects", "granted", "withdrawn", "rate"],
        personal=False,
        column_config={"rate": numbers.percent_column("Rate")},
    )

st.subheader(f"Trend, {trend_start.isoformat()} to {rates_on.isoformat()}")
st.plotly_chart(charts.consent_rate_trend(trend), key="consent_rate_chart")
st.plotly_chart(charts.consent_events_per_month(trend), key="consent_events_chart")
ui.table(
    numbers.as_percent(trend, ["rate_at_month_end"]),
    page=PAGE,
    name="trend",
    filters={"start": trend_start, "end": rates_on},
    columns=["month", "purpose", "granted_events", "withdrawn_events", "rate_at_month_end"],
    personal=False,
    column_config={"rate_at_month_end": numbers.percent_column("Rate at month end")},
)

st.subheader(f"Events by {by.replace('_', ' ')} up to {rates_on.isoformat()}")
if by_column.empty:
    ui.empty_state("No events.")
else:
    ui.table(
        by_column,
        page=PAGE,
        name=f"by-{by.replace('_', '-')}",
        filters={"rates_on": rates_on, "by": by},
        personal=False,
    )

st.subheader(f"Withdrawals, {withdrawn_from.isoformat()} to {withdrawn_to.isoformat()}")
if withdrawn.empty:
    ui.empty_state("No withdrawals in this period.")
else:
    st.metric("Withdrawal events", f"{int(withdrawn['withdrawals'].sum()):,}")
    st.plotly_chart(charts.withdrawals_by_source(withdrawn), key="consent_withdrawals_chart")
    ui.table(
        withdrawn,
        page=PAGE,
        name="withdrawals",
        filters={"start": withdrawn_from, "end": withdrawn_to},
        personal=False,
    )

st.subheader(f"Processing without consent on {rates_on.isoformat()} (R22)")
if without is None:
    st.caption("Turn on “Show processing without consent” above to list them.")
else:
    sessions, subscribers = without["usage_sessions"], without["newsletter_subscribers"]
    left, right = st.columns(2)
    left.metric("Usage sessions without consent", f"{sessions.attrs.get('total', 0):,}")
    right.metric("Subscribers without newsletter consent", f"{subscribers.attrs.get('total', 0):,}")
    for frame, name, label in (
        (sessions, "sessions-without-consent", "Usage sessions recorded without a granted state"),
        (
            subscribers,
            "subscribers-without-consent",
            "Newsletter subscribers without a granted state",
        ),
    ):
        st.markdown(f"**{label}**")
        if frame.empty:
            ui.empty_state("None.")
        else:
            ui.table(frame, page=PAGE, name=name, filters={"as_of": rates_on})

if actions.actions_header("Consent roll-up"):
    state = ui.fetch(cached.consent_rollup_status)
    refreshed_at = state["refreshed_at"]
    st.caption(
        f"Events applied up to id {state['watermark']:,}"
        + (f", last refreshed {clock.oslo_text(refreshed_at)}" if refreshed_at else "")
        + (f"; {state['awaited']:,} lower ids awaited" if state["awaited"] else "")
        + ". Rebuild computes the roll-up again from every consent event; the figures stay "
        "as they are until it is done."
    )
    if st.button("Rebuild the consent roll-up", key="consent_rebuild", icon=":material/refresh:"):
        bar = st.progress(0.0, text="Starting the rebuild")
        result = actions.run(
            consent_rollup.rebuild,
            cached.databases(),
            actor=ui.actor(),
            progress=lambda fraction, message: bar.progress(min(fraction, 1.0), text=message),
        )
        actions.report(result, what="Rebuild of the consent roll-up", noun="")
        st.rerun()
