"""One way to show a share on every page: a rate 0..1 as "76.7 %" (one decimal, a point, a
space before the sign), in metrics, tables, chart labels and the exports of those tables."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

PERCENT_DECIMALS = 1


def percent(rate: Any, *, missing: str = "no rate") -> str:
    """`rate` (0..1) as "76.7 %"; `missing` for None or NaN."""
    if rate is None or (isinstance(rate, float) and math.isnan(rate)):
        return missing
    return f"{float(rate) * 100:.{PERCENT_DECIMALS}f} %"


def as_percent(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A copy of `df` with the rates (0..1) in `columns` as percentages (0..100), rounded to
    PERCENT_DECIMALS, for a table shown with `percent_column` (its export holds the same)."""
    return df.assign(**{c: (df[c] * 100).round(PERCENT_DECIMALS) for c in columns})


def percent_column(label: str) -> Any:
    """The column_config of a column `as_percent` made: "76.7 %" in each cell, headed
    "<label> (%)" (so the export's header says the unit)."""
    return st.column_config.NumberColumn(f"{label} (%)", format=f"%.{PERCENT_DECIMALS}f %%")


if __name__ == "__main__":  # served as a page in "pages folder" mode
    from pages import _gate

    _gate.not_a_page()
