"""Plotly figures the pages show; each takes a frame from a data function and returns a figure."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

STAGE_COLOURS = {
    "upcoming": "#9aa5b1",
    "notice_due": "#f0a202",
    "notified": "#3d7dd8",
    "ready": "#d64545",
    "on_hold": "#6b4fbb",
}


def consent_rate_trend(trend: pd.DataFrame) -> go.Figure:
    """Line per purpose of `rate_at_month_end` (0..1, shown as %) from `consent.consent_trend`.

    A month without subjects has no rate (NaN) and leaves a gap rather than a false 0 % (R21).
    """
    figure = px.line(
        trend,
        x="month",
        y="rate_at_month_end",
        color="purpose",
        markers=True,
        labels={"month": "Month", "rate_at_month_end": "Consent rate at month end"},
    )
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    figure.update_layout(legend_title_text="Purpose", margin={"t": 30}, hovermode="x unified")
    return figure


def consent_events_per_month(trend: pd.DataFrame) -> go.Figure:
    """Grants and withdrawals per month (events, not subjects), one panel per purpose."""
    events = trend.melt(
        id_vars=["month", "purpose"],
        value_vars=["granted_events", "withdrawn_events"],
        var_name="action",
        value_name="events",
    )
    events["action"] = events["action"].map(
        {"granted_events": "granted", "withdrawn_events": "withdrawn"}
    )
    figure = px.bar(
        events,
        x="month",
        y="events",
        color="action",
        barmode="group",
        facet_col="purpose",
        facet_col_wrap=2,
        color_discrete_map={"granted": "#2e8540", "withdrawn": "#d64545"},
        labels={"month": "Month", "events": "Events", "action": "Action"},
    )
    figure.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
    figure.update_layout(margin={"t": 40}, height=520)
    return figure


def stage_bar(counts: dict[str, int]) -> go.Figure:
    """Accounts nearing deletion per R13 stage, in the order the stages happen."""
    stages = list(STAGE_COLOURS)
    figure = go.Figure(
        go.Bar(
            x=[counts.get(stage, 0) for stage in stages],
            y=[stage.replace("_", " ") for stage in stages],
            orientation="h",
            marker_color=[STAGE_COLOURS[s] for s in stages],
        )
    )
    figure.update_layout(
        height=220, margin={"t": 10, "b": 10}, xaxis_title="Accounts", yaxis_autorange="reversed"
    )
    return figure
