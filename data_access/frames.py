"""Small query results as DataFrames."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, Select


def read_frame(engine: Engine, query: Select) -> pd.DataFrame:
    """The rows of an already limited `query`, with its selected columns even when empty."""
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return pd.DataFrame(rows, columns=list(query.selected_columns.keys()))
