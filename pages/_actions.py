"""What every page with action buttons shares: who may act, selections by id, one click =
one action, and the result shown after the rerun (DESIGN.md "Actions"; RULES.md R41).

- Only a DPO may act (`can_act`); a viewer sees the tables and exports, no buttons.
- A table selection is turned into ids at once, using the ids of the table the user saw
  (the previous run's), never row positions of the current data. `stale_ids` refuses a
  selection whose rows changed since ("the list changed, select again").
- `click_key` gives each action button a fresh idempotency key per click: a rerun or a
  double click presents the same key, and the job machinery plans the work once.
- `run` runs an action and clears every cached read of a store the action declares it writes
  (data_access/stores.py), so no page keeps its own list of caches to clear.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

import pandas as pd
import streamlit as st

from data_access import cached, stores
from data_access.results import ActionResult
from pages import _ui as ui

MAX_FAILURES_SHOWN = 200
T = TypeVar("T")


# --- who may act -------------------------------------------------------------------------


def role() -> str | None:
    """'dpo', 'viewer' or None for the current user: from config.toml [roles] for the
    verified e-mail of the signed-in user; in demo mode without sign-in, the demo user acts
    as DPO (RULES.md R41). See ui.identity."""
    return ui.identity().role


def can_act() -> bool:
    """True when the current user may trigger actions now: the DPO role (RULES.md R41), on
    a view of today. At another "as of" date the page is a what-if view without actions, so
    that no action is dated, or checked, on a day other than today."""
    return role() == "dpo" and not ui.what_if()


def actions_header(title: str = "Actions") -> bool:
    """A subheader for the page's actions; for a viewer or in a what-if view, a note
    instead and False."""
    if role() == "dpo" and ui.what_if():
        st.caption(f"Actions are off in the what-if view as of {ui.as_of().isoformat()}.")
        return False
    if not can_act():
        st.caption("Actions are for the DPO role; you can browse and export.")
        return False
    st.subheader(title)
    return True


# --- selections by id --------------------------------------------------------------------


def selectable_table(
    df: pd.DataFrame,
    *,
    key: str,
    id_column: str,
    columns: list[str] | None = None,
    column_config: dict | None = None,
    full_export: bool | None = None,
) -> list[int]:
    """Show `df` (its `columns`, headed as ui.show_frame heads them) with row selection (for
    a DPO) and return the selected ids.

    The browser reports ticked rows by position, and it keeps the ticks of a grid across
    reruns: after an action or any change of the rows, the same positions would hold other
    records ("ghost" ticks). So the grid is a new widget (`widget_key`) whenever its rows
    change and after every `clear_selection`: it starts without ticks, and positions always
    refer to the rows on screen. The ids are kept in session state under f"{key}:selected"
    (tests may set it directly). `full_export` is passed to the row-cap caption: what the
    table's export below holds when the table is capped.
    """
    ids = [int(i) for i in df[id_column]]
    if st.session_state.get(f"{key}:ids", ids) != ids:
        # The rows changed under the grid (an action, another user, a filter): no tick may
        # carry over to the record that now holds its position.
        if st.session_state.get(f"{key}:selected"):
            st.info("The list changed, so your selection was cleared; select again.", icon="🔄")
        clear_selection(key)
    shown = ui.display_frame(df, columns)
    event = ui.show_frame(
        shown,
        column_config=column_config,
        key=widget_key(key),
        on_select="rerun" if can_act() else "ignore",
        selection_mode="multi-row",
    )
    rows = _selected_positions(event)
    if rows is not None and rows != st.session_state.get(f"{key}:rows"):
        st.session_state[f"{key}:selected"] = [ids[r] for r in rows if r < len(ids)]
    st.session_state[f"{key}:rows"] = rows
    st.session_state[f"{key}:ids"] = ids
    ui.row_cap_caption(shown, full_export=full_export)
    return list(st.session_state.get(f"{key}:selected", []))


def widget_key(key: str) -> str:
    """The grid widget's key for the table `key`: `key`, then "#" and the number of times
    its selection was cleared."""
    return f"{key}#{st.session_state.get(f'{key}:generation', 0)}"


def _selected_positions(event) -> list[int] | None:
    selection = getattr(event, "selection", None) if event is not None else None
    if selection is None:
        return None
    rows = (
        selection.get("rows") if isinstance(selection, dict) else getattr(selection, "rows", None)
    )
    return None if rows is None else [int(r) for r in rows]


def clear_selection(key: str) -> None:
    """Forget a table's selection (after an action, when it went stale, when its rows
    changed): the next run shows a new grid without ticks."""
    st.session_state.pop(f"{key}:selected", None)
    st.session_state.pop(f"{key}:rows", None)
    st.session_state.pop(widget_key(key), None)
    st.session_state[f"{key}:generation"] = st.session_state.get(f"{key}:generation", 0) + 1


def stale_ids(selected: Iterable[int], current: pd.DataFrame, id_column: str) -> list[int]:
    """Selected ids no longer in the current list (deleted, moved out of the filter or
    stage since they were selected)."""
    present = {int(i) for i in current[id_column]}
    return [i for i in selected if int(i) not in present]


def refuse_if_stale(key: str, selected: list[int], current: pd.DataFrame, id_column: str) -> bool:
    """Show "the list changed" and clear the selection when any selected id went stale."""
    gone = stale_ids(selected, current, id_column)
    if gone:
        clear_selection(key)
        st.warning(
            f"The list changed since you selected ({len(gone)} selected row(s) are no longer "
            "in it). Nothing was done; select again.",
            icon="🔄",
        )
    return bool(gone)


# --- one click, one action ---------------------------------------------------------------


def run(action: Callable[..., T], *args, **kwargs) -> T:
    """`action(*args, **kwargs)`, then every cached read of a store the action writes is
    cleared (`stores.written_by(action)`, `cached.clear_stores`): the page shows fresh data
    on the next run. Cleared also when the action raised, since a half-done action changed
    data too. Raises TypeError, before running it, for an action that declares no stores."""
    written = stores.written_by(action)
    try:
        return action(*args, **kwargs)
    finally:
        cached.clear_stores(written)


def click_key(name: str) -> str:
    """The idempotency key of the next click on the action `name`; stable across reruns
    until `next_click(name)` is called after the action ran."""
    return st.session_state.setdefault(f"click:{name}", f"{name}:{uuid.uuid4().hex}")


def next_click(name: str) -> None:
    """A new key for the next click: call once the action with the current key ran."""
    st.session_state[f"click:{name}"] = f"{name}:{uuid.uuid4().hex}"


def report(result: ActionResult, *, what: str, noun: str = "record") -> None:
    """Flash the outcome of an action for the next run: counts, then the reasons."""
    failures = "\n".join(
        f"- {noun} {record}: {reason}"
        for record, reason in list(result.failed.items())[:MAX_FAILURES_SHOWN]
    )
    more = len(result.failed) - MAX_FAILURES_SHOWN
    if more > 0:
        failures += f"\n- … and {more} more"
    message = f"{what}: {len(result.succeeded)} succeeded, {len(result.failed)} failed."
    if result.failed:
        ui.flash(f"{message}\n\n{failures}", "warning" if result.succeeded else "error")
    else:
        ui.flash(message, "success")


if __name__ == "__main__":  # served as a page in "pages folder" mode
    from pages import _gate

    _gate.not_a_page()
