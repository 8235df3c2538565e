"""Legal holds: data kept beyond its retention for a legal claim (GDPR art. 17(3)(e); RULES.md
R17). The active holds with those past their review date flagged; for the DPO, placing a
hold and releasing holds (after a confirmation); every hold ever placed; and the deletions,
purges, anonymisations and erasures a hold blocked. Needs the ledger."""

from __future__ import annotations

from datetime import date

import streamlit as st

from data_access import cached, holds, rules
from pages import _actions
from pages import _gate as gate
from pages import _jobs as jobs
from pages import _ui as ui

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "legal-holds"
TABLE_KEY = "holds_table"
RELEASE = "release_holds"
SCOPE_LABELS = {
    "email": "E-mail (the person everywhere)",
    "account": "Account (the account, its members and its data)",
    "contact": "Support contact (that contact only)",
}
TARGET_NAMES = {"email": "e-mail address", "account": "account id", "contact": "contact id"}
COLUMNS = [
    "id",
    "past_review",
    "scope",
    "account_id",
    "contact_id",
    "email",
    "reason",
    "case_ref",
    "owner",
    "placed_on",
    "review_on",
]
ALL_COLUMNS = [
    "id",
    "active",
    "past_review",
    "scope",
    "account_id",
    "contact_id",
    "email",
    "case_ref",
    "owner",
    "placed_on",
    "placed_by",
    "review_on",
    "released_on",
    "released_by",
]
BLOCKED_COLUMNS = ["id", "hold_id", "occurred_at", "actor", "action", "target"]
# Headers the common rule (ui.column_label) would not give.
COLUMN_CONFIG = {"past_review": "Past review?", "review_on": "Review due (Oslo)"}


def _past_review_row(row):
    """Holds past their review date in amber, on screen only."""
    colour = "background-color: rgba(240, 162, 2, 0.22)" if row.get("past_review") else ""
    return [colour] * len(row)


ui.page_header(
    "Legal holds",
    stores=("ledger",),
    caption="A hold blocks every deletion, purge, anonymisation and erasure in its scope "
    "until it is released; then what is past its date is due at once (RULES.md R17). Dates "
    "are Europe/Oslo.",
)
as_of = ui.as_of()
policy = ui.policy()

active = ui.fetch(cached.active_holds, as_of)
past_review = int(active["past_review"].sum()) if not active.empty else 0


def hold_table() -> list[int]:
    """The active holds, selectable by id for a DPO; returns the selected hold ids."""
    if not _actions.can_act():
        ui.table(
            active,
            page=PAGE,
            name="active-holds",
            filters={},
            columns=COLUMNS,
            column_config=COLUMN_CONFIG,
            row_style=_past_review_row,
        )
        return []
    selected = _actions.selectable_table(
        active,
        key=TABLE_KEY,
        id_column="id",
        columns=COLUMNS,
        column_config=COLUMN_CONFIG,
        full_export=False,
    )
    ui.export_table(
        ui.display_frame(active, COLUMNS),
        page=PAGE,
        name="active-holds",
        filters={},
        column_config=COLUMN_CONFIG,
    )
    return selected


@st.dialog("Release legal holds", width="large", on_dismiss=jobs.dismisser(RELEASE))
def confirm_release(hold_ids: list[int]) -> None:
    chosen = active[active["id"].isin(hold_ids)]
    st.markdown(
        f"**{len(hold_ids)} hold(s)** will be released on {as_of.isoformat()}. Whatever they "
        "kept that is past its retention becomes due at once: accounts can be deleted, logs "
        "purged and invoices anonymised from today (R17)."
    )
    ui.show_frame(
        ui.display_frame(chosen, ["id", "scope", "account_id", "contact_id", "email", "case_ref"])
    )
    label = f"Release {len(hold_ids)} hold(s)"
    if not jobs.confirmed(RELEASE, len(hold_ids), label=label, noun="hold"):
        return
    result = _actions.run(
        holds.release_holds, cached.databases(), hold_ids, actor=ui.actor(), as_of=as_of
    )
    jobs.finish(RELEASE, result, what="Release", noun="hold", table_key=TABLE_KEY)


def release_actions(selected: list[int]) -> None:
    if not _actions.actions_header("Release"):
        return
    if st.button(
        f"Release selected ({len(selected)})", key="holds_release", disabled=not selected
    ) and not _actions.refuse_if_stale(TABLE_KEY, selected, active, "id"):
        jobs.open_dialog(RELEASE, selected)


def place_hold_form() -> None:
    """Place a hold: scope, target, reason, case reference, owner (default: you) and review
    date (default: policy.hold_review_months ahead). Every problem of the input is shown at
    once; nothing is written then."""
    st.subheader("Place a legal hold")
    actor = ui.actor()
    default_review = rules.hold_review_default(as_of, policy.hold_review_months)
    st.session_state.setdefault("hold_owner", actor)
    st.session_state.setdefault("hold_review_on", default_review)
    with st.form("hold_form"):
        left, right = st.columns(2)
        scope = left.selectbox(
            "Scope", list(SCOPE_LABELS), format_func=SCOPE_LABELS.get, key="hold_scope"
        )
        target = right.text_input(
            "E-mail address, account id or contact id (as the scope says)", key="hold_target"
        )
        reason = st.text_area("Reason (the legal claim)", key="hold_reason")
        left, middle, right = st.columns(3)
        case_ref = left.text_input("Case reference", key="hold_case_ref")
        owner = middle.text_input("Owner (e-mail)", key="hold_owner")
        review_on = right.date_input("Review on", key="hold_review_on", format="YYYY-MM-DD")
        unmatched_ok = st.checkbox(
            "Place it even if the e-mail address matches no record today",
            key="hold_unmatched_ok",
            help="A hold on an address nobody has protects nothing: check it for a typo.",
        )
        submitted = st.form_submit_button("Place hold")
    if not submitted:
        return
    problems = form_problems(scope, target, reason, case_ref, review_on)
    if problems:
        listed = "\n".join(f"- {ui.escape_markdown(problem)}" for problem in problems)
        st.error(f"The hold was not placed; nothing was written.\n\n{listed}", icon="🛑")
        return
    if scope == "email" and not unmatched_ok and not records_of(target):
        st.warning(
            f"{ui.escape_markdown(target.strip())} matches no account, member, consent record "
            "or support contact today, so the hold would protect nothing. Check the address "
            "for a typo; to hold it anyway (data may arrive later), tick “Place it even if "
            "the e-mail address matches no record today” and place it again. Nothing was "
            "written.",
            icon="⚠️",
        )
        return
    try:
        hold_id = _actions.run(
            holds.place_hold,
            cached.databases(),
            **_scope_argument(scope, target),
            reason=reason,
            case_ref=case_ref,
            review_on=review_on,
            actor=actor,
            owner=owner,
            as_of=as_of,
        )
    except ValueError as exc:
        st.error(f"{ui.escape_markdown(exc)} Nothing was written.", icon="🛑")
        return
    for key in ("hold_target", "hold_reason", "hold_case_ref", "hold_unmatched_ok"):
        st.session_state.pop(key, None)
    message = (
        f"Legal hold {hold_id} placed on {SCOPE_LABELS[scope].split(' (')[0].lower()} "
        f"{ui.escape_markdown(str(target).strip())}; review on {review_on.isoformat()}."
    )
    if isinstance(review_on, date) and review_on > default_review:
        message += (
            f" The review date is more than {policy.hold_review_months} months ahead, longer "
            "than the policy's review period."
        )
        ui.flash(message, "warning")
    else:
        ui.flash(message, "success")
    st.rerun()


def records_of(email: str) -> int:
    """How many rows of the source databases (users, consent, support) the e-mail finds
    today, as Subject lookup finds them (RULES.md R9); the ledger's own rows do not count."""
    try:
        found = ui.fetch(cached.find_subject, email.strip())
    except ValueError:
        return 0
    return sum(len(rows) for name, rows in found.items() if not name.startswith("ledger."))


def form_problems(
    scope: str, target: str, reason: str, case_ref: str, review_on: date | None
) -> list[str]:
    """Every problem of the form's input, each a sentence, so the DPO can fix them in one go
    (holds.place_hold stops at the first). Whether an account or contact exists is left to
    place_hold, which refuses an unknown one (RULES.md R17)."""
    problems = []
    target = (target or "").strip()
    if not target:
        problems.append(f"Enter the {TARGET_NAMES[scope]} to hold.")
    elif scope == "email" and "@" not in target:
        problems.append(f"'{target}' is not an e-mail address.")
    elif scope != "email" and not (target.isascii() and target.isdigit()):
        problems.append(f"The {scope} id must be a whole number, got '{target}'.")
    if not (reason or "").strip():
        problems.append("A legal hold needs a reason.")
    if not (case_ref or "").strip():
        problems.append("A legal hold needs a case reference.")
    if isinstance(review_on, date) and review_on <= as_of:
        problems.append(
            f"The review date {review_on.isoformat()} must be after {as_of.isoformat()}."
        )
    return problems


def _scope_argument(scope: str, target: str) -> dict:
    """The place_hold keyword for the scope, its target checked by form_problems."""
    target = (target or "").strip()
    return {"email": target} if scope == "email" else {f"{scope}_id": int(target)}


def all_holds() -> None:
    """Every hold ever placed, for the review: who placed and released what, and when."""
    st.subheader("Every hold, released ones included")
    everything = ui.fetch(cached.all_holds, as_of)
    if everything.empty:
        ui.empty_state("No legal hold was ever placed.")
        return
    ui.table(
        everything,
        page=PAGE,
        name="all-holds",
        filters={},
        columns=ALL_COLUMNS,
        column_config=COLUMN_CONFIG,
    )


def blocked() -> None:
    st.subheader("Blocked attempts")
    attempts = ui.fetch(cached.blocked_attempts)
    if attempts.empty:
        ui.empty_state("No deletion, purge, anonymisation or erasure was blocked by a hold.")
        return
    st.caption("Deletions, purges, anonymisations and erasures a hold stopped, newest first.")
    ui.table(
        attempts,
        page=PAGE,
        name="blocked-attempts",
        filters={},
        columns=BLOCKED_COLUMNS,
        personal=False,
    )


left, right = st.columns(2)
left.metric("Active holds", len(active))
right.metric("Past review date", past_review)
if past_review:
    st.warning(
        f"{past_review} hold(s) are past their review date: confirm they are still needed "
        "or release them.",
        icon="⚖️",
    )
if active.empty:
    ui.empty_state("No active legal holds.")
else:
    release_actions(hold_table())
if _actions.can_act():
    place_hold_form()
jobs.show_results(RELEASE, id_label="hold_id")
all_holds()
blocked()
if jobs.dialog_ids(RELEASE) is not None:
    confirm_release(jobs.dialog_ids(RELEASE))
