"""Policy versus reality (RULES.md R8, R13-R16, R22, R31, R32): each promise of the privacy
policy counted against hand-built data on SQLite, PostgreSQL and MariaDB, a broken database
named in its rows only, and the Overview's findings with links to the pages that fix them."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import insert
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from data_access import findings
from data_access.engines import Databases
from data_access.ledger_tables import notices
from data_access.settings import STORES
from tests import factories as f
from tests import seeded
from tests.conftest import ROOT, SEED_AS_OF

AS_OF = date(2026, 11, 29)
app_env = seeded.app_env
seeded_demo = seeded.seeded_demo


def by_check(frame) -> dict[tuple[str, str], dict]:
    return {(r["area"], r["rule"]): r for r in frame.to_dict("records")}


@pytest.fixture
def data(empty_dbs) -> Databases:
    """One record breaking each promise, one keeping it, on every backend."""
    return _seed(empty_dbs)


@pytest.fixture
def sqlite_data(sqlite_dbs) -> Databases:
    """The same records on SQLite only, for checks that do not depend on the backend."""
    return _seed(sqlite_dbs)


def _seed(dbs: Databases) -> Databases:
    # R13: inactive since 2025-06-01 (12 months over on 2026-06-01), no notice; one active.
    f.add_account(
        dbs, email="gone@x.no", created_on=date(2024, 1, 1), last_active_on=date(2025, 6, 1)
    )
    f.add_account(dbs, email="active@x.no", last_active_on=date(2026, 11, 1))
    # R14: notified on 2025-12-01 (valid: after the last activity), deletable since 2025-12-31.
    notified = f.add_account(dbs, email="notified@x.no", last_active_on=date(2024, 10, 1))
    with dbs.ledger.begin() as conn:
        conn.execute(
            insert(notices).values(
                account_id=notified,
                sent_on=date(2025, 12, 1),
                created_at=datetime(2025, 12, 1, 9, 0),
                actor="dpo@plaato.example",
                last_activity_on=date(2024, 10, 1),
                deletable_on=date(2025, 12, 31),
            )
        )
    # R16: a chat from 2026-05-28 is past retention on 2026-11-29 (kept through 05-28 + 6
    # months = 11-28); one from 2026-06-01 is not.
    f.add_contact(dbs, started_on=date(2026, 5, 28), email="chat@x.no")
    f.add_contact(dbs, started_on=date(2026, 6, 1), email="chat2@x.no")
    # R15: issued 2020 -> kept through 2025-12-31; issued 2021 -> through 2026-12-31.
    f.add_invoice(dbs, issued_on=date(2020, 6, 1))
    f.add_invoice(dbs, issued_on=date(2021, 6, 1))
    # R22: a session before any usage consent; another after a grant.
    account = f.add_account(dbs, email="stats@x.no", last_active_on=date(2026, 11, 1))
    f.add_usage_session(dbs, account, on=date(2026, 3, 1))
    f.add_consent_event(dbs, purpose="usage_statistics", action="granted", on=date(2026, 3, 2),
                        account_id=account)  # fmt: skip
    f.add_usage_session(dbs, account, on=date(2026, 3, 3))
    # R22: a subscriber without newsletter consent, one with it.
    f.add_subscriber(dbs, email="noconsent@x.no")
    f.add_subscriber(dbs, email="yes@x.no")
    f.add_consent_event(
        dbs, purpose="newsletter", action="granted", on=date(2025, 1, 1), email="yes@x.no"
    )
    # R8: received 2026-09-01, due 2026-10-01: overdue; one received last week is not.
    f.add_request(dbs, received_on=date(2026, 9, 1))
    f.add_request(dbs, received_on=date(2026, 11, 23))
    return dbs


def test_policy_versus_reality_counts_each_broken_promise(data):
    frame = findings.policy_findings(data, AS_OF)

    assert list(frame.columns) == findings.COLUMNS
    checks = by_check(frame)
    expected = {
        ("Accounts", "R13"): (1, "high", "accounts"),
        ("Accounts", "R14"): (1, "high", "accounts"),
        ("Customer service", "R16"): (1, "medium", "retention"),
        ("Invoices", "R15"): (1, "medium", "retention"),
        ("Usage statistics", "R22"): (1, "high", "consent"),
        ("Newsletter", "R22"): (1, "high", "consent"),
        ("Data-subject requests", "R8"): (1, "high", "requests"),
        # An empty register lacks the policy's four recipients (R32) ...
        ("Recipients", "R32"): (4, "high", "register"),
        # ... and each social media platform is a joint controllership the policy denies.
        ("Social media", "R31"): (4, "medium", "register"),
        # No breach was ever logged (R53); no clock has run out, no decision lacks reasoning.
        ("Breaches", "R53"): (1, "medium", "breaches"),
        ("Breaches", "R50"): (0, "ok", "breaches"),
        ("Breaches", "R51"): (0, "ok", "breaches"),
    }
    assert {k: (r["count"], r["severity"], r["page"]) for k, r in checks.items()} == expected
    assert checks[("Accounts", "R13")]["reality"] == (
        "1 account has been inactive longer and has had no notice."
    )
    assert checks[("Accounts", "R13")]["promise"] == (
        "Inactive accounts are deleted, following notification, after 12 months."
    )
    assert checks[("Customer service", "R16")]["promise"] == (
        "Chat, e-mail and phone logs are kept 6 months."
    )
    assert checks[("Recipients", "R32")]["promise"].endswith(
        "US payment processor, Google Analytics, Facebook Pixel, Website provider."
    )
    assert frame["problem"].isna().all()
    # Broken promises first, the most severe at the top.
    assert list(frame["severity"][:10]) == ["high"] * 6 + ["medium"] * 4


def test_a_kept_promise_is_ok_with_a_zero_count(sqlite_dbs):
    f.add_account(sqlite_dbs, email="active@x.no", last_active_on=date(2026, 11, 1))
    frame = findings.policy_findings(sqlite_dbs, AS_OF)
    accounts = by_check(frame)[("Accounts", "R13")]
    assert (accounts["count"], accounts["severity"]) == (0, "ok")
    assert accounts["reality"] == "0 accounts have been inactive longer and have had no notice."


def test_a_broken_database_leaves_its_checks_unknown_and_the_others_counted(sqlite_data, tmp_path):
    data = sqlite_data
    urls = {s: data.engine(s).url.render_as_string(hide_password=False) for s in STORES}
    urls["support"] = f"sqlite:///{tmp_path / 'missing' / 'support.sqlite'}"
    broken = Databases.from_urls(**urls, pseudonym_key=data.pseudonym_key)

    checks = by_check(findings.policy_findings(broken, AS_OF))

    for key in (("Customer service", "R16"), ("Data-subject requests", "R8")):
        assert checks[key]["severity"] == "unknown"
        assert checks[key]["count"] is pd_na or checks[key]["count"] is None
        assert "support.sqlite does not exist" in checks[key]["problem"]
    assert checks[("Invoices", "R15")]["count"] == 1
    assert checks[("Accounts", "R13")]["count"] == 1
    broken.dispose()


pd_na = __import__("pandas").NA


# --- the Overview ------------------------------------------------------------------------------


@pytest.fixture
def navigation_as_served(monkeypatch):
    """Every AppTest run goes through dashboard.py (see tests/test_pages.py)."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def test_overview_lists_policy_findings_with_links_to_the_pages_that_fix_them(
    app_env, navigation_as_served
):
    expected = findings.policy_findings(app_env.dbs, SEED_AS_OF)
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=90)
    at.session_state["as_of"] = SEED_AS_OF
    at.run(timeout=90)

    assert not at.exception, at.exception
    shown = next(df.value for df in at.dataframe if "promise" in df.value.columns)
    assert list(shown["area"]) == list(expected["area"])
    assert list(shown["count"]) == list(expected["count"])
    assert list(shown["rule"]) == list(expected["rule"])
    broken = expected[expected["count"] > 0]
    assert len(broken) > 0, "the seeded demo breaks some promises"
    links = [(link.proto.page, link.proto.label) for link in at.get("page_link")]
    for row in broken.itertuples():
        page = {"accounts": "accounts_nearing_deletion", "requests": "data_subject_requests",
                "retention": "retention", "consent": "consent", "register": "register",
                "breaches": "breaches"}[row.page]  # fmt: skip
        assert (page, f"{row.area}: {row.count:,} to fix ({row.rule})") in links
