"""Register: findings, the record of processing activities, recipients and processors, and
cookies, editable by the DPO; CSV per table and the "Record of processing activities"
document for Datatilsynet (GDPR art. 28, 30, 44–49; ekomloven §3-15; RULES.md R24, R30–R32).
Needs the ledger."""

from __future__ import annotations

from datetime import date
from typing import Any

import streamlit as st

from data_access import cached, register, register_edit, ropa
from data_access.register import SEVERITIES
from pages import _actions as actions
from pages import _gate as gate
from pages import _ui as ui
from pages import _words as words

gate.require_access()  # before anything is read (RULES.md R41)

PAGE = "register"
SEVERITY_ICONS = {"high": "🔴", "medium": "🟠", "low": "🟡"}
LANGUAGES = {"en": "English", "nb": "Norsk (bokmål)"}
NEW = 0  # the "new entry" choice of the edit pickers

ui.page_header(
    "Register",
    stores=("ledger",),
    caption="What the privacy policy promises, checked against the register (RULES.md R32).",
)
as_of = ui.as_of()

# The default through session state, not `default=`: ui.keep_widget_values writes the
# value back on every run (to keep it across pages), and a widget given both warns.
st.session_state.setdefault("register_severity", list(SEVERITIES))
with st.form("register_filters"):
    severities = st.multiselect("Findings of severity", list(SEVERITIES), key="register_severity")
    st.form_submit_button("Apply")

findings = ui.fetch(cached.findings, as_of)
activities = ui.fetch(cached.processing_activities)
recipients = ui.fetch(cached.recipients)
cookies = ui.fetch(cached.cookies)

if activities.empty and recipients.empty and cookies.empty and not actions.can_act():
    ui.empty_state("The register is empty: no processing activities, recipients or cookies.")
    st.stop()


def policy_text() -> None:
    """The privacy policy the register is checked against, when config.toml names its file."""
    try:
        text = register.policy_text(cached.databases())
    except (OSError, UnicodeDecodeError) as exc:
        path = cached.settings().policy_facts.policy_text_path
        st.warning(
            f"config.toml's policy_facts.policy_text_path names {ui.escape_markdown(path)}, "
            f"which cannot be read as UTF-8 text: {ui.escape_markdown(exc)}",
            icon="📄",
        )
        return
    if text is not None:
        with st.expander("The privacy policy (the text the findings check against)"):
            st.text(text)


policy_text()
st.subheader("Findings")
counts = findings["severity"].value_counts()
for column, severity in zip(st.columns(len(SEVERITIES)), SEVERITIES, strict=True):
    column.metric(f"{SEVERITY_ICONS[severity]} {severity}", int(counts.get(severity, 0)))
shown = findings[findings["severity"].isin(severities)]
if shown.empty:
    ui.empty_state("No findings of the chosen severity.")
else:
    ui.table(
        shown,
        page=PAGE,
        name="findings",
        filters={"severity": sorted(severities)},
        personal=False,
    )

for title, frame, name in (
    ("Processing activities (art. 30)", activities, "processing-activities"),
    ("Recipients and processors", recipients, "recipients"),
    ("Cookies", cookies, "cookies"),
):
    st.subheader(title)
    if frame.empty:
        ui.empty_state("No entries yet.")
    else:
        ui.table(frame, page=PAGE, name=name, filters={}, personal=False)

st.subheader("Record of processing activities")
st.caption(
    "The register as one document for Datatilsynet (GDPR art. 30): controller, processing "
    "activities, recipients and processors, cookies. Open it in a browser and print it."
)
language = st.radio(
    "Language",
    list(LANGUAGES),
    format_func=LANGUAGES.get,
    horizontal=True,
    key="register_ropa_language",
)
st.download_button(
    "Download the record of processing activities (HTML)",
    data=ropa.record_of_processing_html(cached.databases(), language=language, as_of=as_of),
    file_name=f"record-of-processing-{language}-{as_of.isoformat()}.html",
    mime="text/html",
    key="register_ropa_download",
    on_click="ignore",
    icon=":material/description:",
)


# --- editing -----------------------------------------------------------------------------


def pick(kind: str, frame, label: str) -> int:
    """The id chosen to edit (NEW for a new entry), by name."""
    names = {int(r["id"]): str(r["name"]) for r in frame.to_dict("records")}
    return st.selectbox(
        label,
        [NEW, *names],
        format_func=lambda i: f"New {kind}" if i == NEW else names[i],
        key=f"register_edit_{kind.replace(' ', '_')}",
    )


def seen(kind: str, row_id: int) -> dict[str, Any] | None:
    """The row as it was when its form was first shown: passed back as `expected`, so a
    change by someone else in between is refused instead of overwritten."""
    if row_id == NEW:
        return None
    key = f"register:{kind}:{row_id}:seen"
    if key not in st.session_state:
        st.session_state[key] = register_edit.entry(cached.databases(), kind, row_id)
    return st.session_state[key]


def after_save(result, kind: str, row_id: int, what: str) -> None:
    st.session_state.pop(f"register:{kind}:{row_id}:seen", None)
    actions.report(result, what=what, noun=kind)
    st.rerun()


def key_of(kind: str, row_id: int, field: str) -> str:
    """An edit widget's key: "edit:" keeps ui.keep_widget_values from writing it back (the
    widget shows the stored row's value, and a widget given both a value and a written-back
    key makes Streamlit warn)."""
    return f"{ui.EDIT_KEY_PREFIX}register_{kind.replace(' ', '_')}_{row_id}_{field}"


def when(value: Any) -> date | None:
    return value if isinstance(value, date) else None


def recipient_form(row_id: int) -> None:
    kind = "recipient"
    row = seen(kind, row_id) or {}
    codes = ["", *register_edit.COUNTRIES]
    with st.form(f"register_recipient_form_{row_id}"):
        left, right = st.columns(2)
        values = {
            "name": left.text_input(
                "Name (as the policy names it)",
                row.get("name") or "",
                key=key_of(kind, row_id, "name"),
            ),  # fmt: skip
            "legal_name": right.text_input(
                "Legal name", row.get("legal_name") or "", key=key_of(kind, row_id, "legal_name")
            ),  # fmt: skip
            "role": left.selectbox(
                "Role",
                register_edit.ROLES,
                index=_index(register_edit.ROLES, row.get("role")),
                format_func=words.word,
                key=key_of(kind, row_id, "role"),
            ),  # fmt: skip
            "country": right.selectbox(
                "Country (ISO 3166-1 alpha-2)",
                codes,
                index=_index(codes, row.get("country") or ""),
                format_func=lambda c: (
                    f"{c} – {register_edit.COUNTRIES[c]}" if c else "(not recorded)"
                ),
                key=key_of(kind, row_id, "country"),
            ),
            "transfer_mechanism": left.selectbox(
                "Transfer mechanism",
                register_edit.MECHANISMS,
                index=_index(register_edit.MECHANISMS, row.get("transfer_mechanism") or "none"),
                key=key_of(kind, row_id, "transfer_mechanism"),
            ),
            "purpose": right.text_input(
                "Purpose", row.get("purpose") or "", key=key_of(kind, row_id, "purpose")
            ),  # fmt: skip
            "data_categories": st.text_area(
                "Data categories",
                row.get("data_categories") or "",
                key=key_of(kind, row_id, "data_categories"),
            ),  # fmt: skip
        }
        dates = st.columns(4)
        for column, (field, label) in zip(
            dates,
            (
                ("dpa_signed_on", "DPA signed on"),
                ("dpf_checked_on", "DPF listing checked on"),
                ("tia_on", "Transfer impact assessment on"),
                ("last_review_on", "Last review on"),
            ),
            strict=True,
        ):
            values[field] = column.date_input(
                label,
                value=when(row.get(field)),
                format="YYYY-MM-DD",
                key=key_of(kind, row_id, field),
            )
        left, right = st.columns(2)
        values["named_in_policy"] = left.checkbox(
            "Named in the privacy policy", bool(row.get("named_in_policy")),
            key=key_of(kind, row_id, "named_in_policy"))  # fmt: skip
        values["receives_personal_data"] = right.checkbox(
            "Receives personal data", bool(row.get("receives_personal_data", True)),
            key=key_of(kind, row_id, "receives_personal_data"))  # fmt: skip
        values["notes"] = st.text_area("Notes", row.get("notes") or "",
                                       key=key_of(kind, row_id, "notes"))  # fmt: skip
        if st.form_submit_button("Save recipient"):
            result = actions.run(
                register_edit.save_recipient,
                cached.databases(),
                values,
                actor=ui.actor(),
                recipient_id=None if row_id == NEW else row_id,
                expected=row or None,
                as_of=as_of,
            )
            after_save(result, kind, row_id, "Saving the recipient")


def activity_form(row_id: int) -> None:
    kind = "processing activity"
    row = seen(kind, row_id) or {}
    with st.form(f"register_activity_form_{row_id}"):
        left, right = st.columns(2)
        values = {
            "name": left.text_input(
                "Name", row.get("name") or "", key=key_of(kind, row_id, "name")
            ),
            "legal_basis": right.selectbox(
                "Legal basis (GDPR art. 6(1))",
                register_edit.LEGAL_BASES,
                index=_index(register_edit.LEGAL_BASES, row.get("legal_basis")),
                key=key_of(kind, row_id, "legal_basis"),
            ),
        }
        for field, label in (
            ("purpose", "Purpose"),
            ("data_subjects", "Categories of data subjects"),
            ("data_categories", "Categories of personal data"),
            ("recipients", "Recipients"),
            ("third_country_transfers", "Transfers to third countries"),
            ("retention_rule", "Time limits for erasure"),
            ("security_measures", "Security measures"),
        ):
            values[field] = st.text_area(
                label, row.get(field) or "", key=key_of(kind, row_id, field)
            )
        if st.form_submit_button("Save processing activity"):
            result = actions.run(
                register_edit.save_activity,
                cached.databases(),
                values,
                actor=ui.actor(),
                activity_id=None if row_id == NEW else row_id,
                expected=row or None,
                as_of=as_of,
            )
            after_save(result, kind, row_id, "Saving the processing activity")


def cookie_form(row_id: int) -> None:
    kind = "cookie"
    row = seen(kind, row_id) or {}
    with st.form(f"register_cookie_form_{row_id}"):
        left, right = st.columns(2)
        days = row.get("lifetime_days")
        values = {
            "name": left.text_input(
                "Name", row.get("name") or "", key=key_of(kind, row_id, "name")
            ),
            "provider": right.text_input(
                "Provider", row.get("provider") or "", key=key_of(kind, row_id, "provider")
            ),  # fmt: skip
            "party": left.selectbox(
                "Party",
                register_edit.PARTIES,
                index=_index(register_edit.PARTIES, row.get("party")),
                key=key_of(kind, row_id, "party"),
            ),  # fmt: skip
            "category": right.selectbox(
                "Category",
                register_edit.CATEGORIES,
                index=_index(register_edit.CATEGORIES, row.get("category")),
                format_func=lambda v: v.replace("_", " "),
                key=key_of(kind, row_id, "category"),
            ),
            "lifetime_days": left.number_input(
                "Lifetime in days (empty for a session cookie)",
                min_value=0,
                value=int(days) if days is not None else None,
                step=1,
                key=key_of(kind, row_id, "lifetime_days"),
            ),
            "lifetime": right.text_input(
                "Lifetime as the provider states it",
                row.get("lifetime") or "",
                key=key_of(kind, row_id, "lifetime"),
            ),  # fmt: skip
            "consent_required": st.checkbox(
                "Requires prior consent (statistics and marketing do, ekomloven §3-15)",
                bool(row.get("consent_required")),
                key=key_of(kind, row_id, "consent_required"),
            ),
        }
        if st.form_submit_button("Save cookie"):
            result = actions.run(
                register_edit.save_cookie,
                cached.databases(),
                values,
                actor=ui.actor(),
                cookie_id=None if row_id == NEW else row_id,
                expected=row or None,
                as_of=as_of,
            )
            after_save(result, kind, row_id, "Saving the cookie")


def _index(options, value) -> int:
    return list(options).index(value) if value in options else 0


@st.dialog("Remove from the register")
def confirm_removal(kind: str, row_id: int, name: str) -> None:
    st.write(
        f"The {kind} “{ui.escape_markdown(name)}” (id {row_id}) will be removed from the "
        "register. The audit log keeps its values as they were."
    )
    left, right = st.columns(2)
    if left.button("Remove", type="primary", key=f"register_remove_confirm_{row_id}"):
        result = actions.run(
            register_edit.delete_entry,
            cached.databases(),
            kind,
            row_id,
            actor=ui.actor(),
            expected=seen(kind, row_id),
        )
        after_save(result, kind, row_id, f"Removing the {kind}")
    if right.button("Cancel", key=f"register_remove_cancel_{row_id}"):
        st.rerun()


if actions.actions_header("Edit the register"):
    st.caption(
        "Every save is checked (dates, ISO country codes, roles, legal bases, transfer "
        "mechanisms) and written to the audit log with the values before and after."
    )
    tabs = st.tabs(["Recipients and processors", "Processing activities", "Cookies"])
    for tab, (kind, frame, form) in zip(
        tabs,
        (
            ("recipient", recipients, recipient_form),
            ("processing activity", activities, activity_form),
            ("cookie", cookies, cookie_form),
        ),
        strict=True,
    ):
        with tab:
            chosen = pick(kind, frame, f"{kind.capitalize()} to edit")
            form(chosen)
            if chosen != NEW:
                name = str(frame.loc[frame["id"] == chosen, "name"].iloc[0])
                if st.button(
                    f"Remove this {kind}…", key=f"register_remove_{kind.replace(' ', '_')}"
                ):
                    confirm_removal(kind, chosen, name)
