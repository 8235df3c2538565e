"""No ghost selections: a grid's ticks never carry over to other records.

The browser keeps a grid's ticks by row position across reruns. After an action removed or
moved rows, the same positions hold other accounts; if they were adopted, the next click
would act on accounts nobody chose. The grid is therefore a new widget after every action
and every change of its rows, and the deletion dialog lists the accounts it will delete.
"""

from __future__ import annotations

from data_access import cached, retention
from tests import seeded
from tests.conftest import SEED_AS_OF
from tests.test_pages import _navigation_as_served, texts  # noqa: F401
from tests.test_retention_pages import (
    click,
    ids_in_stage,
    open_page,
    run,
    select_rows,
    selectable,
)

seeded_demo = seeded.seeded_demo
demo_copy = seeded.demo_copy

TABLE = "accounts_table"


def browser_still_ticks(at, widget_key: str, positions: list[int]) -> None:
    """What the browser sends back for a grid it still shows with ticks at `positions`."""
    at.session_state[widget_key] = {"selection": {"rows": positions, "columns": [], "cells": []}}
    run(at)


def test_after_an_action_the_old_ticks_select_nothing(demo_copy):
    due = ids_in_stage(demo_copy.dbs, SEED_AS_OF, "notice_due", 2)
    at = open_page("accounts_nearing_deletion")
    before = selectable(at, TABLE)
    positions = [n for n, i in enumerate(before.value["account_id"]) if int(i) in set(due)]
    select_rows(at, TABLE, "account_id", due)
    click(at, "accounts_send_notice")
    assert "Send notice: 2 succeeded, 0 failed." in texts(at.success)

    browser_still_ticks(at, before.key, positions)

    assert selectable(at, TABLE).key != before.key  # a new grid, without ticks
    assert any(c.startswith("0 selected:") for c in texts(at.caption).splitlines())
    assert at.button(key="accounts_send_notice").disabled


def test_rows_changed_by_someone_else_clear_the_selection_with_a_note(demo_copy):
    dbs = demo_copy.dbs
    due = ids_in_stage(dbs, SEED_AS_OF, "notice_due", 3)
    at = open_page("accounts_nearing_deletion")
    select_rows(at, TABLE, "account_id", due[:2])
    assert "2 selected: 2 notice due, 0 ready to delete." in texts(at.caption)
    key = selectable(at, TABLE).key

    # Another DPO sends a notice to the third account: the list's rows change.
    retention.send_deletion_notices(dbs, due[2:], actor="other@plaato.example", as_of=SEED_AS_OF)
    cached.clear()
    run(at)

    assert "The list changed, so your selection was cleared; select again." in texts(at.info)
    assert selectable(at, TABLE).key != key
    assert any(c.startswith("0 selected:") for c in texts(at.caption).splitlines())


def test_the_deletion_dialog_lists_each_account_it_will_delete(demo_copy):
    ready = ids_in_stage(demo_copy.dbs, SEED_AS_OF, "ready", 3)
    assert ready, "the seeded demo has accounts ready for deletion"
    at = open_page("accounts_nearing_deletion")
    select_rows(at, TABLE, "account_id", ready)
    click(at, "accounts_approve")

    listed = next(
        df.value
        for df in at.dataframe
        if list(df.value.columns) == ["account_id", "email", "full_name", "stage", "deletable_on"]
    )
    assert sorted(int(i) for i in listed["account_id"]) == sorted(ready)
    assert set(listed["stage"]) == {"ready"}
