"""AppTests of the dashboard: every page against the seeded small demo, with the figures a DPO
would read checked against the data functions on the same data (as of SEED_AS_OF).

The app runs from dashboard.py (settings, sidebar, st.navigation) and switches pages the way
a user does.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import date, datetime, timedelta

import openpyxl
import pytest
from sqlalchemy import delete, func, select, update
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from data_access import (
    audit,
    cached,
    consent,
    consent_rollup,
    holds,
    prepared,
    register,
    requests,
    retention,
)
from data_access.ledger_tables import audit_head, audit_log, consent_rollup_state
from data_access.settings import STORES, DatabaseSettings
from tests import seeded
from tests.conftest import ROOT, SEED_AS_OF

# The seeded demo's fixtures, used by name below.
seeded_demo = seeded.seeded_demo
app_env = seeded.app_env
demo_copy = seeded.demo_copy

PAGES = {
    "overview": "Overview",
    "accounts_nearing_deletion": "Accounts nearing deletion",
    "retention": "Retention",
    "legal_holds": "Legal holds",
    "data_subject_requests": "Data-subject requests",
    "consent": "Consent",
    "register": "Register",
    "breaches": "Breaches",
    "subject_lookup": "Subject lookup",
    "audit_log": "Audit log",
    "inspection_pack": "Inspection pack",
    "radar": "Deadline radar",
    "retention_schedule": "Retention schedule",
}


@pytest.fixture(autouse=True)
def _navigation_as_served(monkeypatch):
    """AppTest re-derives "pages/ folder app" mode before every run, so its second run would
    execute the page file alone, skipping dashboard.py. A live server leaves that mode as soon
    as st.navigation is called; keep it off here too so every run goes through dashboard.py."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def open_app(
    page: str | None = None, *, as_of: date = SEED_AS_OF, email: str | None = None
) -> AppTest:
    """The dashboard as of `as_of`, on `page` (a file name under pages/) or the Overview;
    signed in as `email` (sign-in configured, e-mail verified) when given."""
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60)
    at.session_state["as_of"] = as_of
    if email:
        seeded.sign_in(at, email, email_verified=True)
    at.run(timeout=60)
    if page:
        at.switch_page(f"pages/{page}.py").run(timeout=60)
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def submit(at: AppTest, form: str, label: str = "Apply") -> AppTest:
    """Press the submit button `label` of the form with key `form` and rerun."""
    return at.button(key=f"FormSubmitter:{form}-{label}").click().run(timeout=60)


def assert_ran_cleanly(at: AppTest) -> None:
    assert not at.exception, texts(at.exception)
    assert not at.error, texts(at.error)


# --- every page ----------------------------------------------------------------------------


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_under_the_dashboard_with_data(app_env, page):
    at = open_app(page)
    assert_ran_cleanly(at)
    assert [t.value for t in at.title] == [PAGES[page]]
    assert at.sidebar.date_input(key="as_of").value == SEED_AS_OF
    if page == "subject_lookup":
        assert "Enter the data subject's e-mail address" in texts(at.info)
    elif page == "overview":
        assert len(at.metric) >= 18
    else:
        assert at.dataframe, f"{page} shows no table"
        assert all(len(df.value) > 0 for df in at.dataframe)


# --- figures a DPO reads ---------------------------------------------------------------------


def test_r8_requests_page_overdue_count_equals_overdue_rows(app_env):
    rows = requests.open_requests(app_env.dbs, SEED_AS_OF)
    assert not rows.attrs["truncated"]
    overdue = int(rows["overdue"].sum())
    assert overdue > 0, "the seeded demo has overdue requests"

    at = open_app("data_subject_requests")

    assert metrics(at)["Overdue"] == str(overdue)
    assert metrics(at)["Open"] == str(len(rows))
    queue = at.dataframe[0].value
    assert int(queue["overdue"].sum()) == overdue
    # Overdue first, each with the red badge (R8).
    assert queue["overdue"].head(overdue).all()
    assert set(queue.loc[queue["overdue"], "badge"]) == {"🔴 red"}


def test_r5_requests_awaiting_identity_are_shown_apart_and_never_overdue(app_env):
    rows = requests.open_requests(app_env.dbs, SEED_AS_OF, status="awaiting_identity")
    at = open_app("data_subject_requests")

    assert len(rows) > 0, "the seeded demo has requests awaiting identity"
    assert metrics(at)["Awaiting identity"] == str(len(rows))
    awaiting = at.dataframe[-1].value
    assert list(awaiting["request_id"]) == list(rows["request_id"])
    assert "overdue" not in awaiting.columns
    assert "awaiting_identity" not in set(at.dataframe[0].value.get("status", []))


def test_r8_requests_type_filter_shows_only_that_type(app_env):
    expected = requests.open_requests(app_env.dbs, SEED_AS_OF, request_type="erasure")
    at = open_app("data_subject_requests")

    at.selectbox(key="requests_type").set_value("erasure")
    submit(at, "request_filters")

    assert_ran_cleanly(at)
    shown = [df.value for df in at.dataframe]
    ids = sorted(i for frame in shown for i in frame["request_id"])
    assert ids == sorted(expected["request_id"])
    assert {t for frame in shown for t in frame["request_type"]} == {"erasure"}


def test_overview_kpis_equal_the_data_functions(app_env):
    dbs = app_env.dbs
    stages = retention.stage_counts(dbs, SEED_AS_OF, 30)
    counts = requests.request_counts(dbs, SEED_AS_OF)
    rates = consent.consent_rates(dbs, SEED_AS_OF)
    findings = register.findings_count(dbs, SEED_AS_OF)

    shown = metrics(open_app())

    assert shown["Upcoming"] == str(stages["upcoming"])
    assert shown["Notice due"] == str(stages["notice_due"])
    assert shown["Notified"] == str(stages["notified"])
    assert shown["Ready to delete"] == str(stages["ready"])
    assert shown["On hold"] == str(stages["on_hold"])
    assert shown["Open requests"] == str(counts["open"])
    assert shown["Due this week"] == str(counts["due_this_week"])
    assert shown["Overdue requests"] == str(counts["overdue"])
    assert shown["Awaiting identity"] == str(counts["awaiting_identity"])
    for row in rates.itertuples():
        assert shown[row.purpose.replace("_", " ")] == f"{row.rate * 100:.1f} %"
    assert shown["Support contacts past retention"] == str(
        retention.count_support_contacts_past_retention(dbs, SEED_AS_OF)
    )
    assert shown["Invoices past retention"] == str(
        retention.count_invoices_past_retention(dbs, SEED_AS_OF)
    )
    assert shown["Active legal holds"] == str(len(holds.active_holds(dbs, SEED_AS_OF)))
    assert shown["Holds past review"] == str(holds.holds_past_review(dbs, SEED_AS_OF))
    assert shown["High findings"] == str(findings["high"])
    assert shown["Medium findings"] == str(findings["medium"])
    assert shown["Low findings"] == str(findings["low"])


@pytest.fixture
def private_demo(seeded_demo, monkeypatch, tmp_path):
    """A private copy of the seeded demo, in demo mode (the demo user acts as DPO)."""
    demo_dir = seeded.copy_demo(seeded_demo.folder, tmp_path / "demo")
    names = DatabaseSettings()
    for store in STORES:
        monkeypatch.delenv(getattr(names, f"{store}_url_env"), raising=False)
    monkeypatch.setenv(names.pseudonym_key_env, seeded.PSEUDONYM_KEY)
    monkeypatch.setattr(cached, "CONFIG_PATH", seeded.write_config(tmp_path, demo_dir))
    return cached.databases()


@pytest.fixture
def rollup_not_built(private_demo):
    """The private copy with its consent roll-up not yet built (as on the first start on
    new data)."""
    dbs = private_demo
    with dbs.ledger.begin() as conn:
        conn.execute(update(consent_rollup_state).values(status="empty", watermark=0))
    assert consent_rollup.status(dbs)["status"] == "empty"
    return dbs


def test_r21_overview_builds_the_consent_rollup_with_a_progress_bar(rollup_not_built, monkeypatch):
    drawn: list[tuple[float, str]] = []
    original = DeltaGenerator.progress

    def progress(self, value, text=None, **kwargs):
        drawn.append((value, text))
        return original(self, value, text=text, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "progress", progress)
    at = open_app()

    assert_ran_cleanly(at)
    assert consent_rollup.status(rollup_not_built)["status"] == "ready"
    assert len(drawn) >= 2 and all(0.0 <= value <= 1.0 for value, _text in drawn), drawn
    assert all(text for _value, text in drawn)  # each step says what it does
    assert not at.get("progress")  # gone once the build is done
    shown = metrics(at)
    for row in consent.consent_rates(rollup_not_built, SEED_AS_OF).itertuples():
        assert shown[row.purpose.replace("_", " ")] == f"{row.rate * 100:.1f} %"


def test_overview_links_to_each_area(app_env):
    at = open_app()
    links = {link.proto.page for link in at.get("page_link")}
    assert links == {
        "accounts_nearing_deletion",
        "data_subject_requests",
        "consent",
        "retention",
        "legal_holds",
        "register",
        "radar",  # "Today": the deadline radar
        "breaches",
    }


def test_r13_accounts_page_lists_the_window_with_dates_and_stage(app_env):
    expected = retention.accounts_nearing_deletion(app_env.dbs, SEED_AS_OF, 30)
    at = open_app("accounts_nearing_deletion")

    shown = at.dataframe[0].value
    assert list(shown["account_id"]) == list(expected["account_id"])
    assert list(shown["eligible_on"]) == list(expected["eligible_on"])
    assert list(shown["stage"]) == list(expected["stage"])
    for column in ("last_activity_on", "last_activity_by", "notice_sent_on", "deletable_on"):
        assert column in shown.columns


def test_r13_accounts_page_stage_filter(app_env):
    expected = retention.accounts_nearing_deletion(app_env.dbs, SEED_AS_OF, 30, stages=["ready"])
    at = open_app("accounts_nearing_deletion")

    at.multiselect(key="accounts_stages").set_value(["ready"])
    submit(at, "accounts_filters")

    assert len(expected) > 0, "the seeded demo has accounts ready for deletion"
    assert set(at.dataframe[0].value["stage"]) == {"ready"}
    assert list(at.dataframe[0].value["account_id"]) == list(expected["account_id"])


@pytest.mark.parametrize("days", [-5, 367])
def test_r13_accounts_page_refuses_a_deletion_window_out_of_range(app_env, days):
    at = open_app("accounts_nearing_deletion")
    at.number_input(key="accounts_within_days").set_value(days)
    submit(at, "accounts_filters")

    assert not at.exception, texts(at.exception)
    assert texts(at.error) == f"“Deletion within” must be from 0 to 366 days, not {days}. " + (
        "Nothing is listed until it is."
    )
    assert at.number_input(key="accounts_within_days").value == days  # not quietly replaced
    assert not at.dataframe

    at.number_input(key="accounts_within_days").set_value(0)
    submit(at, "accounts_filters")
    assert_ran_cleanly(at)
    expected = retention.accounts_nearing_deletion(app_env.dbs, SEED_AS_OF, 0)
    assert list(at.dataframe[0].value["account_id"]) == list(expected["account_id"])


def test_as_of_in_the_sidebar_is_kept_across_pages(app_env):
    later = SEED_AS_OF + timedelta(days=20)
    at = open_app()
    at.sidebar.date_input(key="as_of").set_value(later).run(timeout=60)
    at.switch_page("pages/data_subject_requests.py").run(timeout=60)

    assert at.sidebar.date_input(key="as_of").value == later
    assert metrics(at)["Overdue"] == str(requests.request_counts(app_env.dbs, later)["overdue"])


# --- export ------------------------------------------------------------------------------


def test_r40_export_holds_exactly_the_rows_shown_and_is_audited_once(app_env):
    dbs = app_env.dbs
    at = open_app("accounts_nearing_deletion")
    shown = at.dataframe[0].value
    before = len(audit.audit_entries(dbs, action="export"))

    at.button(key="export:accounts-nearing-deletion:accounts:prepare").click().run(timeout=60)

    assert_ran_cleanly(at)
    download = at.download_button(key="export:accounts-nearing-deletion:accounts:download")
    assert download.label == "Download accounts-nearing-deletion-accounts-2026-11-29-excel.csv"
    data = prepared.get(at.session_state["export:accounts-nearing-deletion:accounts"]["token"])
    assert data.startswith(b"\xef\xbb\xbf")  # Excel dialect: UTF-8 with BOM (R40)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    labels = headers(at.dataframe[0])
    assert rows[0] == [labels[c] for c in shown.columns]  # headed as on screen
    assert len(rows) - 1 == len(shown)
    column = {name: rows[0].index(labels[name]) for name in shown.columns}
    assert [int(r[column["account_id"]]) for r in rows[1:]] == list(shown["account_id"])
    assert [r[column["email"]] for r in rows[1:]] == list(shown["email"])
    assert [r[column["eligible_on"]] for r in rows[1:]] == [
        d.isoformat() for d in shown["eligible_on"]
    ]
    assert [r[column["on_hold"]] for r in rows[1:]] == [
        "true" if v else "false" for v in shown["on_hold"]
    ]

    entries = audit.audit_entries(dbs, action="export")
    assert len(entries) == before + 1
    newest = entries.iloc[0]
    assert newest["target"] == "accounts-nearing-deletion/accounts"
    assert newest["actor"] == "demo@localhost"
    assert newest["counts"] == f'{{"rows":{len(shown)}}}'

    # The footer prints the audit chain's head, which the export's own entry ends (R18).
    head = audit.current_head(dbs)
    assert head.last_id == newest["id"]
    assert f"Audited; the audit log now holds {head.head_label}." in texts(at.caption)

    at.run(timeout=60)  # a rerun keeps the prepared file and writes no second entry
    assert at.download_button(key="export:accounts-nearing-deletion:accounts:download")
    assert len(audit.audit_entries(dbs, action="export")) == before + 1


def test_r40_aggregate_export_is_not_audited(app_env):
    dbs = app_env.dbs
    at = open_app("consent")
    before = len(audit.audit_entries(dbs, action="export"))

    at.button(key="export:consent:rates:prepare").click().run(timeout=60)

    data = prepared.get(at.session_state["export:consent:rates"]["token"])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["Purpose", "Subjects", "Granted", "Withdrawn", "Rate (%)"]
    assert [r[0] for r in rows[1:]] == list(at.dataframe[0].value["purpose"])
    assert len(audit.audit_entries(dbs, action="export")) == before


@pytest.fixture
def default_value_warnings(monkeypatch) -> list[str]:
    """Streamlit's warnings about a widget given a default while its key was set through
    session state (ui.keep_widget_values writes every filter back): all of them, not only
    the first of the process."""
    from streamlit.elements.lib import policies

    warned: list[str] = []
    original = policies.check_session_state_rules

    def check(*args, **kwargs):
        policies._shown_default_value_warning = False
        return original(*args, **kwargs)

    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    monkeypatch.setattr(policies, "check_session_state_rules", check)
    monkeypatch.setattr(
        policies._LOGGER, "warning", lambda message, *args, **_: warned.append(message % args)
    )
    return warned


def test_consent_trend_months_survives_page_switches_without_a_session_state_warning(
    app_env, default_value_warnings
):
    at = open_app("consent")
    assert at.number_input(key="consent_trend_months").value == 12
    at.number_input(key="consent_trend_months").set_value(24)
    submit(at, "consent_filters")
    at.switch_page("pages/overview.py").run(timeout=60)
    at.switch_page("pages/consent.py").run(timeout=60)

    assert_ran_cleanly(at)
    assert at.number_input(key="consent_trend_months").value == 24
    assert "Trend, 2024-12-01 to 2026-11-29" in [s.value for s in at.subheader]
    assert default_value_warnings == []


@pytest.mark.parametrize("page", sorted(PAGES))
def test_no_page_warns_about_a_widget_default_after_a_page_switch(
    app_env, default_value_warnings, page
):
    at = open_app(page)
    at.switch_page("pages/overview.py" if page != "overview" else "pages/audit_log.py")
    at.run(timeout=60)
    at.switch_page(f"pages/{page}.py").run(timeout=60)

    assert_ran_cleanly(at)
    assert default_value_warnings == []


# --- tables --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("account_id", "Account"),
        ("request_type", "Request type"),
        ("received_on", "Received (Oslo)"),
        ("occurred_at (Oslo)", "Occurred (Oslo time)"),
        ("hold_ids", "Holds"),
        ("subject_email", "Subject e-mail"),
        ("dpf_checked_on", "DPF checked (Oslo)"),
        ("id", "ID"),
        ("case_ref", "Case reference"),
        ("Field", "Field"),
    ],
)
def test_a_column_name_becomes_a_human_header(name, header):
    from pages import _ui as ui

    assert ui.column_label(name) == header


def headers(frame) -> dict[str, str]:
    """The headers a table shows, by column name (its column_config labels)."""
    config = json.loads(frame.proto.columns or "{}")
    return {name: column["label"] for name, column in config.items() if column.get("label")}


def exported_header(at: AppTest, page: str, name: str, chosen: str = "excel") -> list[str]:
    """The column names of the table's export in format `chosen` (prepared, not downloaded)."""
    key = f"export:{page}:{name}"
    at.radio(key=f"{key}:format").set_value(chosen).run(timeout=60)
    at.button(key=f"{key}:prepare").click().run(timeout=60)
    data = prepared.get(at.session_state[key]["token"])
    if chosen == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(data)).active
        return [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    delimiter = ";" if chosen == "excel" else ","
    return next(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=delimiter))


def test_tables_show_human_headers_and_blank_cells_and_exports_use_the_same_headers(app_env):
    at = open_app("data_subject_requests")
    queue = at.dataframe[0]
    shown = headers(queue)
    columns = list(queue.value.columns)  # the data keeps its names
    assert columns[:3] == ["request_id", "badge", "request_type"]
    assert shown["request_id"] == "Request"
    assert shown["request_type"] == "Request type"
    assert shown["received_on"] == "Received (Oslo)"
    assert shown["duplicate"] == "Duplicate?"  # the page's own header
    assert queue.proto.HasField("placeholder") and queue.proto.placeholder == ""
    assert exported_header(at, "data-subject-requests", "queue") == [shown[c] for c in columns]

    at = open_app("accounts_nearing_deletion")  # a selectable table (the demo user is DPO)
    accounts = at.dataframe[0]
    assert accounts.value["notice_sent_on"].isna().any(), "accounts not yet notified"
    assert accounts.proto.HasField("placeholder") and accounts.proto.placeholder == ""
    assert headers(accounts)["account_id"] == "Account"
    assert headers(accounts)["on_hold"] == "On hold?"
    assert exported_header(at, "accounts-nearing-deletion", "accounts", "xlsx") == [
        headers(accounts)[c] for c in accounts.value.columns
    ]

    at = open_app("audit_log")
    entries = at.dataframe[0]
    assert headers(entries)["occurred_at (Oslo)"] == "Occurred (Oslo time)"
    assert exported_header(at, "audit-log", "entries", "plain")[:2] == [
        "ID",
        "Occurred (Oslo time)",
    ]


# --- look-up and audit -------------------------------------------------------------------


def look_up(at: AppTest, entered: str) -> AppTest:
    at.text_input(key="lookup_email").set_value(entered)
    return submit(at, "lookup_form", "Look up")


def test_r12_subject_lookup_in_upper_case_shows_the_account(app_env):
    account = retention.accounts_nearing_deletion(app_env.dbs, SEED_AS_OF, 30).iloc[0]
    at = look_up(open_app("subject_lookup"), f"  {account['email'].upper()} ")

    assert_ran_cleanly(at)
    assert at.subheader[0].value == "users.accounts"
    accounts = at.dataframe[0].value
    assert list(accounts["id"]) == [account["account_id"]]
    assert list(accounts["email"]) == [account["email"]]


def test_subject_lookup_malformed_and_unknown_addresses(app_env):
    at = look_up(open_app("subject_lookup"), "kari.nordmann.example.no")
    assert "is not an e-mail address" in texts(at.error)
    assert not at.dataframe

    at = look_up(at, "nobody@nowhere.invalid")
    assert "Nothing held about this address" in texts(at.info)
    assert not at.dataframe


def test_r18_audit_page_says_the_chain_is_intact(app_env):
    at = open_app("audit_log")
    assert audit.verify_chain(app_env.dbs) == (True, None)
    assert "The audit chain is intact" in texts(at.success)
    assert list(at.dataframe[0].value["id"]) == list(audit.audit_entries(app_env.dbs)["id"])


def test_r18_audit_page_reports_entries_missing_since_the_anchor(demo_copy):
    dbs = demo_copy.dbs
    anchors = demo_copy.folder / "audit-anchors.log"  # the demo's anchor file
    anchor = audit.write_anchor(dbs, anchors, now=datetime(2026, 11, 29, 6, 0))
    with dbs.ledger.begin() as conn:  # the newest two entries removed, the head corrected
        conn.execute(delete(audit_log).where(audit_log.c.id > anchor.last_id - 2))
        last = conn.execute(select(func.max(audit_log.c.id))).scalar_one()
        new_head = conn.execute(select(audit_log.c.hash).where(audit_log.c.id == last))
        conn.execute(
            update(audit_head).values(hash=new_head.scalar_one(), entries=anchor.entries - 2)
        )

    at = open_app("audit_log")

    assert not at.exception and not at.success
    message = texts(at.error)
    assert f"The audit chain is broken at entry id {last}" in message
    first, count = anchor.entries - 1, anchor.entries
    assert (
        f"Entries {first:,}–{count:,} are missing since the anchor of 2026-11-29 06:00 UTC"
        in message.replace("\\", "")
    )
    assert f"Latest anchor: {anchor.head_label}, anchored 2026-11-29 06:00 UTC." in (
        texts(at.caption).replace("\\", "")
    )


def test_r18_audit_page_warns_when_no_anchor_was_written(demo_copy):
    at = open_app("audit_log")
    assert "The audit chain is intact" in texts(at.success)
    assert "There is no anchor file at" in texts(at.warning).replace("\\", "")


def test_r18_dpo_writes_an_anchor_from_the_audit_page(demo_copy):
    at = open_app("audit_log")
    assert "There is no anchor file at" in texts(at.warning).replace("\\", "")
    at.button(key="audit_write_anchor").click().run(timeout=60)
    assert not at.exception and not at.error
    anchor = audit.latest_anchor(demo_copy.dbs, demo_copy.folder / "audit-anchors.log")
    assert anchor.head == audit.current_head(demo_copy.dbs).head
    assert f"Anchored: {anchor.label}." in texts(at.success)
    assert "There is no anchor file" not in texts(at.warning).replace("\\", "")


# --- broken configuration ------------------------------------------------------------------


def test_a_broken_database_is_named_and_other_pages_keep_working(app_env, monkeypatch, tmp_path):
    monkeypatch.setenv("DPO_SUPPORT_URL", f"sqlite:///{tmp_path / 'missing' / 'support.sqlite'}")

    # Not a demo file, so sign-in is required (RULES.md R41).
    at = open_app(email=seeded.DPO_EMAIL)
    assert "The support database" in texts(at.warning)
    assert not at.exception
    assert metrics(at)["Ready to delete"] == str(
        retention.stage_counts(app_env.dbs, SEED_AS_OF, 30)["ready"]
    )
    assert "Open requests" not in metrics(at)
    databases = at.dataframe[-1].value  # the Overview's "Databases" table
    assert dict(zip(databases["store"], databases["status"], strict=True)) == {
        "users": "ok",
        "consent": "ok",
        "support": "problem",
        "ledger": "ok",
    }

    at.switch_page("pages/data_subject_requests.py").run(timeout=60)
    assert "The support database" in texts(at.error)
    assert not at.dataframe

    at.switch_page("pages/audit_log.py").run(timeout=60)
    assert not at.exception and not at.error
    assert "The audit chain is intact" in texts(at.success)


def test_a_missing_contract_column_is_named_and_the_rest_of_the_page_works(
    app_env, monkeypatch, tmp_path
):
    # A copy of the seeded support database whose contacts table lacks a contract column.
    copy = tmp_path / "support.sqlite"
    with sqlite3.connect(app_env.folder / "support.sqlite") as source:
        with sqlite3.connect(copy) as target:
            source.backup(target)
            target.execute("ALTER TABLE contacts DROP COLUMN location")
    monkeypatch.setenv("DPO_SUPPORT_URL", f"sqlite:///{copy}")

    at = open_app("retention", email=seeded.DPO_EMAIL)  # not a demo file: sign-in (R41)

    assert not at.exception
    assert "The support table 'contacts' has no column 'location'." in texts(at.error)
    assert "Support contacts past retention" not in metrics(at)
    invoices = retention.invoices_past_retention(app_env.dbs, SEED_AS_OF)
    assert metrics(at)["Invoices past retention"] == str(invoices.attrs["total"])
    assert list(at.dataframe[0].value["invoice_id"]) == list(invoices["invoice_id"])


def test_a_malformed_config_shows_the_settings_error(app_env, monkeypatch, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[policy]\nnotice_days = "thirty"\n', encoding="utf-8")
    monkeypatch.setattr(cached, "CONFIG_PATH", config)

    at = open_app()

    assert "'policy.notice_days' must be int" in texts(at.error)
    assert not at.title


# --- demo mode -----------------------------------------------------------------------------


def demo_config(monkeypatch, tmp_path, demo_dir) -> None:
    """A config.toml whose demo_dir is `demo_dir`, with no database URL in the environment,
    so every database is a demo file there (demo mode, RULES.md R41)."""
    names = DatabaseSettings()
    for store in STORES:
        monkeypatch.delenv(getattr(names, f"{store}_url_env"), raising=False)
    monkeypatch.delenv(names.pseudonym_key_env, raising=False)
    config = tmp_path / "config.toml"
    config.write_text(f'[databases]\ndemo_dir = "{demo_dir}"\n', encoding="utf-8")
    monkeypatch.setattr(cached, "CONFIG_PATH", config)


def test_r41_demo_mode_shows_the_banner_and_keeps_existing_demo_data(
    seeded_demo, monkeypatch, tmp_path
):
    demo_config(monkeypatch, tmp_path, seeded_demo.folder)
    accounts = retention.stage_counts(seeded_demo.dbs, SEED_AS_OF, 30)

    at = open_app()

    assert_ran_cleanly(at)
    assert "Demo mode: embedded demo databases, no sign-in" in texts(at.info)
    assert not at.get("progress")
    assert metrics(at)["Ready to delete"] == str(accounts["ready"])


def test_first_start_in_demo_mode_generates_the_demo_data(monkeypatch, tmp_path):
    demo_dir = tmp_path / "data"
    demo_config(monkeypatch, tmp_path, demo_dir)

    at = open_app("data_subject_requests")

    assert_ran_cleanly(at)
    assert sorted(p.name for p in demo_dir.glob("*.sqlite")) == [
        "consent.sqlite",
        "ledger.sqlite",
        "support.sqlite",
        "users.sqlite",
    ]
    assert int(metrics(at)["Open"]) > 0
    assert at.dataframe


def test_r18_audit_page_filters_by_words_and_subject_without_showing_the_email(app_env):
    at = open_app("audit_log")
    at.text_input(key="audit_text").set_value("hold")
    at = submit(at, "audit_filters")
    assert_ran_cleanly(at)
    shown = at.dataframe[0].value
    assert {"place_hold", "release_hold"} <= set(shown["action"])
    searched = shown[["action", "target", "details", "actor"]].fillna("").astype(str)
    assert searched.apply(lambda row: "hold" in " ".join(row).lower(), axis=1).all()

    email = "no.such.person@example.no"
    at.text_input(key="audit_text").set_value("")
    at.text_input(key="audit_subject").set_value(email)
    at = submit(at, "audit_filters")
    assert "No audit entries match these filters." in texts(at.info)
    assert email not in texts(at.markdown) + texts(at.caption) + texts(at.info)


def shown_words(frame, column: str) -> dict[str, str]:
    """The words a table shows for each code of `column` (its column_config options)."""
    config = json.loads(frame.proto.columns or "{}")[column]
    return {o["value"]: o["label"] for o in config["type_config"]["options"]}


def test_codes_are_shown_as_words_and_the_data_keeps_the_codes(app_env):
    from pages import _words as words

    assert words.word("notice_due") == "Notice due"
    assert words.word("in_progress") == "In progress"
    assert words.word("joint_controller") == "Joint controller"
    assert words.word("report_prepared") == "Report prepared"

    accounts = open_app("accounts_nearing_deletion").dataframe[0]
    assert shown_words(accounts, "stage")["notice_due"] == "Notice due"
    assert "notice_due" in set(accounts.value["stage"])  # the data keeps the code

    queue = open_app("data_subject_requests").dataframe[0]
    assert shown_words(queue, "status")["in_progress"] == "In progress"

    register_tables = open_app("register").dataframe
    roles = [shown_words(t, "role") for t in register_tables if "role" in t.value.columns]
    assert roles and roles[0].get("joint_controller") == "Joint controller", roles


def test_r40_the_two_csv_formats_get_different_file_names(app_env):
    at = open_app("audit_log")
    names = {}
    for chosen in ("excel", "plain", "xlsx"):
        at.radio(key="export:audit-log:entries:format").set_value(chosen).run(timeout=60)
        at.button(key="export:audit-log:entries:prepare").click().run(timeout=60)
        names[chosen] = at.session_state["export:audit-log:entries"]["file_name"]
    assert names == {
        "excel": "audit-log-entries-2026-11-29-excel.csv",
        "plain": "audit-log-entries-2026-11-29-plain.csv",
        "xlsx": "audit-log-entries-2026-11-29.xlsx",
    }


def test_one_percent_format_on_the_consent_page_metrics_table_and_chart(app_env):
    rates = consent.consent_rates(app_env.dbs, SEED_AS_OF)
    at = open_app("consent")
    assert_ran_cleanly(at)
    shown = metrics(at)
    table = next(t for t in at.dataframe if "rate" in t.value.columns)
    config = json.loads(table.proto.columns)["rate"]
    assert config["label"] == "Rate (%)"
    assert config["type_config"]["format"] == "%.1f %%"  # "76.7 %", never the browser's locale
    for row in rates.itertuples():
        assert shown[row.purpose.replace("_", " ")] == f"{row.rate * 100:.1f} %"
    assert list(table.value["rate"]) == [round(r * 100, 1) for r in rates["rate"]]


def test_overview_gives_the_policy_versus_reality_sentences_room(app_env):
    at = open_app()
    findings = next(t for t in at.dataframe if "reality" in t.value.columns)
    config = json.loads(findings.proto.columns)
    assert config["reality"]["width"] == "large" and config["promise"]["width"] == "large"
    assert config["rule"]["width"] == "small" and config["count"]["width"] == "small"
    assert config["reality"]["label"] == "Reality"
    assert findings.proto.row_height >= 60  # a long reality wraps onto a second line
