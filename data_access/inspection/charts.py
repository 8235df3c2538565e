"""Trend charts of the yearly report as PNG images for the PDF (plotly figures exported
by kaleido, which drives a local Chromium/Chrome; nothing is fetched from the network).

`render` starts one browser for all of a report's charts. Without a usable browser it raises
ChartsUnavailable, and the report says in words that its charts are missing.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from data_access.inspection.parts import text

WIDTH, HEIGHT, SCALE = 900, 420, 2  # pixels; SCALE 2 keeps the text sharp in print
# Fixed here, not taken from plotly's default template, which a running Streamlit replaces.
TEMPLATE = "plotly_white"
PALETTE = ["#3d7dd8", "#d64545", "#2a9d8f", "#f0a202", "#6b4fbb", "#8c564b"]


# kaleido's browser server is one per process: two reports prepared at once (two sessions
# of the dashboard) take turns, so that one never stops the server under the other.
_RENDERING = threading.Lock()


class ChartsUnavailable(RuntimeError):
    """The charts could not be rendered (no browser for kaleido, or it failed)."""


def on_time_chart(metrics: pd.DataFrame, lang: str) -> go.Figure:
    """Bars of requests answered per month (on time, late) from `requests.closure_metrics`."""
    on_time, late = text(lang, "I tide", "On time"), text(lang, "For sent", "Late")
    data = metrics.rename(columns={"on_time": on_time, "late": late})
    figure = px.bar(data, x="month", y=[on_time, late], template=TEMPLATE,
                    color_discrete_sequence=PALETTE)  # fmt: skip
    return _styled(figure, lang, text(lang, "Besvarte henvendelser per måned",
                                      "Requests answered per month"), text(lang, "Antall", "Requests"))  # fmt: skip


def consent_chart(trend: pd.DataFrame, lang: str) -> go.Figure:
    """A line per purpose of the rate at month end (0..1, shown as %) from
    `consent.consent_trend`; a month without subjects is a gap, never 0 % (R21)."""
    figure = px.line(trend, x="month", y="rate_at_month_end", color="purpose", markers=True,
                     template=TEMPLATE, color_discrete_sequence=PALETTE)  # fmt: skip
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    return _styled(figure, lang, text(lang, "Samtykkeandel ved månedsslutt",
                                      "Consent rate at month end"), text(lang, "Andel", "Rate"))  # fmt: skip


def retention_chart(monthly: pd.DataFrame, lang: str) -> go.Figure:
    """Bars of records deleted or anonymised per month and rule (columns month, rule,
    records)."""
    figure = px.bar(monthly, x="month", y="records", color="rule", template=TEMPLATE,
                    color_discrete_sequence=PALETTE)  # fmt: skip
    return _styled(figure, lang, text(lang, "Poster slettet eller anonymisert per måned",
                                      "Records deleted or anonymised per month"),
                   text(lang, "Poster", "Records"))  # fmt: skip


def _styled(figure: go.Figure, lang: str, title: str, y_title: str) -> go.Figure:
    figure.update_layout(
        title=title,
        template=TEMPLATE,
        font={"family": "DejaVu Sans, Arial", "size": 14},
        legend_title_text="",
        margin={"t": 60, "l": 60, "r": 20, "b": 50},
        xaxis_title=text(lang, "Måned", "Month"),
        yaxis_title=y_title,
    )
    return figure


def render(figures: Mapping[str, go.Figure]) -> dict[str, bytes]:
    """Each figure as PNG bytes (WIDTH x HEIGHT at SCALE), by the same names. Raises
    ChartsUnavailable when kaleido or its browser cannot render them."""
    if not figures:
        return {}
    try:
        import kaleido
        import plotly.io as pio
    except ImportError as exc:  # the report stands without its charts
        raise ChartsUnavailable(f"kaleido is not installed: {exc}") from exc
    try:
        with _RENDERING:
            kaleido.start_sync_server(silence_warnings=True)
            try:
                with warnings.catch_warnings():
                    # plotly says per-call options are ignored by a running server: expected.
                    warnings.simplefilter("ignore", UserWarning)
                    return {name: _png(pio, fig) for name, fig in figures.items()}
            finally:
                kaleido.stop_sync_server(silence_warnings=True)
    except Exception as exc:  # kaleido raises its own and the browser's errors
        raise ChartsUnavailable(f"the charts could not be rendered: {exc}") from exc


def _png(pio, figure: go.Figure) -> bytes:
    return pio.to_image(figure, format="png", width=WIDTH, height=HEIGHT, scale=SCALE)
