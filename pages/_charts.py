"""Plotly figures the pages show; each takes a frame from a data function and returns a figure."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from pages import _numbers as numbers

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


REQUEST_STATUS_COLOURS = {
    "received": "#9aa5b1",
    "awaiting_identity": "#6b4fbb",
    "in_progress": "#3d7dd8",
    "extended": "#f0a202",
}


def requests_answered(metrics: pd.DataFrame) -> go.Figure:
    """Requests answered per month, on time and late (stacked bars), with the on-time rate
    (0..1, shown as %) as a line on the right axis; from `requests.closure_metrics`. A month
    without answers has no rate and leaves a gap (RULES.md R2-R6)."""
    months = [m.isoformat()[:7] for m in metrics["month"]]
    figure = go.Figure(
        [
            go.Bar(x=months, y=metrics["on_time"], name="on time", marker_color="#2e8540"),
            go.Bar(x=months, y=metrics["late"], name="late", marker_color="#d64545"),
            go.Scatter(
                x=months,
                y=metrics["on_time_rate"],
                name="on-time rate",
                yaxis="y2",
                mode="lines+markers",
                line={"color": "#333333"},
            ),
        ]
    )
    figure.update_layout(
        barmode="stack",
        height=320,
        margin={"t": 30},
        yaxis={"title": "Requests answered"},
        yaxis2={
            "title": "On-time rate",
            "overlaying": "y",
            "side": "right",
            "tickformat": ".0%",
            "range": [0, 1.05],
        },
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def days_to_close(metrics: pd.DataFrame) -> go.Figure:
    """Median calendar days from receipt to answer per month, with the one-month deadline
    (about 30 days) as a reference line; from `requests.closure_metrics`."""
    months = [m.isoformat()[:7] for m in metrics["month"]]
    figure = go.Figure(go.Bar(x=months, y=metrics["median_days_to_close"], marker_color="#3d7dd8"))
    figure.add_hline(
        y=30, line_dash="dot", line_color="#d64545", annotation_text="about one month (R2)"
    )
    figure.update_layout(height=320, margin={"t": 30}, yaxis_title="Median days to close")
    return figure


def open_requests_by_type(counts: pd.DataFrame) -> go.Figure:
    """Open requests per type, stacked by status; from `requests.open_by_type`."""
    figure = px.bar(
        counts,
        x="requests",
        y="request_type",
        color="status",
        orientation="h",
        color_discrete_map=REQUEST_STATUS_COLOURS,
        category_orders={"status": list(REQUEST_STATUS_COLOURS)},
        labels={"requests": "Open requests", "request_type": "Type", "status": "Status"},
    )
    figure.update_layout(height=320, margin={"t": 30}, yaxis_autorange="reversed")
    return figure


def consent_rates_compared(rates: pd.DataFrame) -> go.Figure:
    """Consent rate per purpose on two days side by side (0..1, shown as %), from a frame
    with columns purpose, day (label) and rate; a purpose without subjects shows no bar
    rather than 0 % (RULES.md R21)."""
    figure = px.bar(
        rates,
        x="purpose",
        y="rate",
        color="day",
        barmode="group",
        text=rates["rate"].map(lambda rate: numbers.percent(rate, missing="")),
        labels={"purpose": "Purpose", "rate": "Consent rate", "day": "On"},
    )
    figure.update_yaxes(tickformat=".0%", range=[0, 1])
    figure.update_layout(margin={"t": 30}, height=320, legend_title_text="On")
    return figure


def withdrawals_by_source(withdrawn: pd.DataFrame) -> go.Figure:
    """Withdrawal events per purpose, stacked by source, from `consent.withdrawals`."""
    totals = (
        withdrawn.assign(source=withdrawn["source"].fillna("(none)"))
        .groupby(["purpose", "source"], as_index=False)["withdrawals"]
        .sum()
    )
    figure = px.bar(
        totals,
        x="purpose",
        y="withdrawals",
        color="source",
        labels={"purpose": "Purpose", "withdrawals": "Withdrawals", "source": "Source"},
    )
    figure.update_layout(margin={"t": 30}, height=320)
    return figure


if __name__ == "__main__":  # served as a page in "pages folder" mode
    from pages import _gate

    _gate.not_a_page()
