"""Failures of a store in words (data_access/failures.py): the pages and job results never
show SQL, its parameters or e-mail addresses; the server log has the statement under the
same reference, still without the parameters."""

from __future__ import annotations

import logging
import re
from datetime import date

from sqlalchemy import insert, text
from sqlalchemy.exc import OperationalError

from data_access import jobs
from data_access import tables as t
from data_access.failures import in_words
from tests import factories as f

AS_OF = date(2026, 11, 29)
PERSON = "kari.nordmann@example.no"


def _insert_a_duplicate(conn, ctx):
    """Fails on every backend with the person's e-mail among the parameters."""
    row = {"id": ctx.target_id, "email": PERSON, "full_name": "Kari Nordmann",
           "account_type": "personal", "created_at": AS_OF}  # fmt: skip
    conn.execute(insert(t.accounts).values(**row))
    return {"accounts": 1}


def test_a_failed_step_is_told_in_words_and_its_sql_goes_to_the_log_only(empty_dbs, caplog):
    account_id = f.add_account(empty_dbs, email=PERSON)
    job_id, _ = jobs.create_job(
        empty_dbs,
        kind="test_failure",
        actor="dpo@plaato.example",
        as_of=AS_OF,
        steps=[jobs.PlannedStep(f"account:{account_id}", "users", "duplicate", rule="R14")],
    )

    with caplog.at_level(logging.ERROR, logger="dpo_dashboard"):
        result = jobs.run_job(empty_dbs, job_id, {"duplicate": _insert_a_duplicate})

    shown = result.failed[f"account:{account_id}"]
    assert shown.startswith("users failed at duplicate: IntegrityError: the change conflicts")
    for leak in ("[SQL", "[parameters", "INSERT", "@", "kari", "Nordmann"):
        assert leak not in shown
    reference = re.search(r"reference ([0-9a-f]{8})\)$", shown)[1]
    stored = jobs.job_steps_frame(empty_dbs, job_id)["error"].iloc[0]
    assert stored == shown  # the job's page shows what the ledger keeps
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"Database failure {reference}: " in logged
    assert "INSERT INTO accounts" in logged
    assert PERSON not in logged  # parameters are personal data: not even in the log


def test_a_driver_reason_keeps_its_words_and_loses_values_and_secrets(caplog):
    error = OperationalError(
        "SELECT 1",
        {"email": PERSON},
        Exception(
            "connection to postgresql://dpo:pw-77x@db.example/users failed for 'kari@x.no'\n"
            "DETAIL: Key (email)=(kari@x.no) already exists."
        ),
    )
    with caplog.at_level(logging.ERROR, logger="dpo_dashboard"):
        shown = in_words(error)
    assert shown.startswith("the database could not run the statement")
    assert "connection to postgresql://dpo:***@db.example/users failed for '…'" in shown
    for leak in ("pw-77x", "kari", "DETAIL", "SELECT"):
        assert leak not in shown
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "pw-77x" not in logged and PERSON not in logged
    assert "SQL: SELECT 1" in logged


def test_other_errors_keep_their_first_line(sqlite_dbs):
    assert in_words(ConnectionError("support server went away\nmore")) == (
        "support server went away"
    )
    try:
        with sqlite_dbs.users.connect() as conn:
            conn.execute(text("SELECT * FROM accounts WHERE email = :e"), {"e": PERSON}).all()
            conn.execute(text("SELECT nope FROM accounts WHERE email = :e"), {"e": PERSON})
    except OperationalError as exc:
        shown = in_words(exc)
    assert "no such column: nope" in shown and PERSON not in shown and "[SQL" not in shown
