"""What the retention pages share around their actions: the confirmation dialog's state,
the progress bar, the per-record results of the last action and the list of jobs that did
not finish, with "Resume" (DESIGN.md "Actions"; RULES.md R14-R17).

A confirmation is opened by storing the ids it is about under `dialog:<name>`; the page
calls its @st.dialog function on every run while they are stored, so the dialog survives
reruns, and forgets them on confirm, cancel or dismiss. Nothing here writes: the actions
are the data_access functions the pages pass in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd
import streamlit as st

from data_access import cached, clock
from data_access.results import ActionResult
from pages import _actions
from pages import _ui as ui

Progress = Callable[[float, str], None]
# More records than this need their count typed before a destructive action runs.
TYPED_CONFIRMATION_ABOVE = 50
RESULT_COLUMNS = ["id", "outcome", "reason"]


# --- confirmation dialogs ----------------------------------------------------------------


def open_dialog(name: str, ids: Iterable[int]) -> None:
    """Ask for confirmation of the action `name` on these ids (shown from the next call of
    the page's dialog function)."""
    st.session_state[f"dialog:{name}"] = [int(i) for i in ids]


def dialog_ids(name: str) -> list[int] | None:
    """The ids a confirmation of `name` is open for, or None when none is open."""
    ids = st.session_state.get(f"dialog:{name}")
    return list(ids) if ids is not None else None


def close_dialog(name: str) -> None:
    """Forget the confirmation of `name` and what was typed into it."""
    st.session_state.pop(f"dialog:{name}", None)
    st.session_state.pop(f"{name}:typed", None)


def dismisser(name: str) -> Callable[[], None]:
    """An on_dismiss callback for st.dialog: closing the dialog forgets the confirmation."""
    return lambda: close_dialog(name)


def confirmed(name: str, count: int, *, label: str, noun: str, enabled: bool = True) -> bool:
    """The dialog's confirm and cancel buttons; True when the action may run now.

    With more than TYPED_CONFIRMATION_ABOVE records the user types the count first (the
    confirm button stays disabled until it matches). Cancel closes the dialog. `enabled`
    False disables the confirm button (nothing left to act on)."""
    typed_ok = enabled
    if count > TYPED_CONFIRMATION_ABOVE:
        typed = st.text_input(
            f"Type {count} to confirm that {count:,} {noun}s are affected",
            key=f"{name}:typed",
        )
        typed_ok = typed_ok and typed.strip().replace(",", "").replace(" ", "") == str(count)
    left, right = st.columns(2)
    go = left.button(label, key=f"{name}:confirm", type="primary", disabled=not typed_ok)
    if right.button("Cancel", key=f"{name}:cancel"):
        close_dialog(name)
        st.rerun()
    return go and typed_ok


def progress_bar(text: str) -> Progress:
    """A progress bar in the current container; the returned callback moves it (fraction
    0..1 and a message), as the actions' `progress` arguments expect."""
    bar = st.progress(0.0, text=text)

    def update(fraction: float, message: str) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=f"{text} {message}")

    return update


def finish(
    name: str,
    result: ActionResult,
    *,
    what: str,
    noun: str,
    table_key: str | None = None,
    results_as: str | None = None,
) -> None:
    """After an action ran (through `_actions.run`, which cleared the caches of what it
    wrote): a fresh idempotency key for the next click, the dialog closed, the per-record
    results kept for display (under `results_as`, default `name`), the flash message, the
    selection cleared, and a rerun."""
    _actions.next_click(name)
    close_dialog(name)
    remember(results_as or name, result, what=what)
    _actions.report(result, what=what, noun=noun)
    if table_key:
        _actions.clear_selection(table_key)
    st.rerun()


# --- results -----------------------------------------------------------------------------


def remember(name: str, result: ActionResult, *, what: str) -> None:
    """Keep the per-record outcome of the last run of `name` for `show_results`."""
    st.session_state[f"results:{name}"] = {
        "what": what,
        "succeeded": [int(i) for i in result.succeeded],
        "failed": {int(i): str(reason) for i, reason in result.failed.items()},
        "job_id": getattr(result, "job_id", None),
    }


def results_frame(name: str) -> pd.DataFrame | None:
    """The last results of `name`: one row per record, failures first. Columns: id,
    outcome ('succeeded' | 'failed'), reason."""
    kept = st.session_state.get(f"results:{name}")
    if not kept:
        return None
    rows = [(i, "failed", reason) for i, reason in kept["failed"].items()]
    rows += [(i, "succeeded", "") for i in kept["succeeded"]]
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def show_results(name: str, *, id_label: str) -> None:
    """The per-record results of the last run of `name` in an expander, if any."""
    frame = results_frame(name)
    if frame is None or frame.empty:
        return
    kept = st.session_state[f"results:{name}"]
    failed = int((frame["outcome"] == "failed").sum())
    title = f"Results of the last run: {kept['what']} ({len(frame) - failed} succeeded, {failed} failed)"
    with st.expander(title, expanded=bool(failed)):
        ui.show_frame(frame.rename(columns={"id": id_label}), key=f"results:{name}:table")
        if kept.get("job_id"):
            st.caption(f"Job {kept['job_id']} in the ledger; its steps are in the audit log.")


# --- jobs that did not finish ------------------------------------------------------------


def unfinished_jobs(
    kind: str,
    *,
    title: str,
    resume: Callable[[int, Progress], ActionResult],
    noun: str,
    results_as: str,
) -> None:
    """Jobs of `kind` that did not finish: left partial (a store failed mid-job) or
    interrupted (the process running them is gone: their lease expired), with which step
    failed and why, and for a DPO a "Resume" button that runs only the steps not yet done
    (DESIGN.md "Actions"). A job whose lease is live is running now: no button.

    `resume(job_id, progress)` runs the action as the signed-in user through `_actions.run`;
    its per-record results are shown as those of the action `results_as`."""
    jobs = ui.fetch(cached.unfinished_jobs, kind)
    if jobs.empty:
        return
    st.warning(
        f"{len(jobs)} {title} did not finish. The stores each step changed are consistent; "
        "the steps not yet done are listed. Resume finishes them; nothing is done twice.",
        icon="⏸️",
    )
    for job in jobs.itertuples():
        with st.container(border=True):
            st.markdown(
                f"**Job {job.job_id}** ({job.status}), as of {job.as_of.isoformat()}, "
                f"started by {ui.escape_markdown(job.actor)}"
            )
            failed = ui.fetch(cached.failed_steps, int(job.job_id))
            if not failed.empty:
                ui.show_frame(
                    ui.display_frame(failed, ["target", "store", "step", "error"]),
                    key=f"job:{job.job_id}:failed",
                )
            elif job.error:
                st.caption(ui.escape_markdown(job.error))
            st.caption(
                ui.escape_markdown(claim_text(job.status, job.claimed_by, job.lease_expires_at))
            )
            if _actions.can_act() and job.status != "running":
                _resume_button(int(job.job_id), resume=resume, noun=noun, results_as=results_as)


def claim_text(status: str, claimed_by, lease_expires_at) -> str:
    """What a job's claim says about it (plain text): running now, interrupted, or who ran
    it last. `status` as `jobs.unfinished_jobs` gives it; `lease_expires_at` UTC or NaT."""
    by = claimed_by if isinstance(claimed_by, str) else None
    lease = None if pd.isna(lease_expires_at) else clock.oslo_text(lease_expires_at, seconds=True)
    if status == "running":
        return (
            f"This job is running now ({by or 'another click or tab'}; its lease runs to "
            f"{lease} and is renewed while it runs)."
        )
    if status == "interrupted":
        since = f"its lease expired at {lease}" if lease else "it has no lease"
        return (
            f"Interrupted: the run by {by or 'an earlier version'} stopped mid-job ({since}). "
            "Resume finishes it."
        )
    return f"Last run by {by}." if by else "Not started yet."


def _resume_button(
    job_id: int,
    *,
    resume: Callable[[int, Progress], ActionResult],
    noun: str,
    results_as: str,
) -> None:
    name = f"resume:{job_id}"
    if st.button(f"Resume job {job_id}", key=f"resume_job:{job_id}"):
        result = resume(job_id, progress_bar(f"Resuming job {job_id}…"))
        finish(
            name,
            result,
            what=f"Resume job {job_id}",
            noun=noun,
            results_as=results_as,
        )


if __name__ == "__main__":  # served as a page in "pages folder" mode
    from pages import _gate

    _gate.not_a_page()
