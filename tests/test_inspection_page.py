"""AppTests of the Inspection pack page on a copy of the seeded small demo (as of
SEED_AS_OF): the gate, a preview of every section with the pages' figures, one button that
prepares the pack (audited) and its download, the DPO role only; a bad period is refused.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from data_access import inspection, requests, rules, stores
from data_access import ledger_tables as lt
from pages import _ui as ui
from tests import seeded
from tests.conftest import ROOT, SEED_AS_OF

seeded_demo = seeded.seeded_demo
demo_copy = seeded.demo_copy
PAGE = "pages/inspection_pack.py"
DEFAULT_START = rules.add_months(SEED_AS_OF, -12) + timedelta(days=1)


@pytest.fixture(autouse=True)
def _navigation_as_served(monkeypatch):
    """Keep every AppTest run going through dashboard.py (see tests/test_pages.py)."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def open_page(email: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120)
    if email:
        seeded.sign_in(at, email)
    at.session_state["as_of"] = SEED_AS_OF
    at.run(timeout=120)
    return at.switch_page(PAGE).run(timeout=120)


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, texts(at.exception)
    assert not at.error, texts(at.error)


def test_the_page_previews_every_section_with_the_pages_figures(demo_copy):
    at = open_page()

    assert_clean(at)
    assert [e.label.split(" · ")[0] for e in at.expander] == [
        part.key
        for part in inspection.build_parts(
            inspection.context(
                demo_copy.dbs, period_start=DEFAULT_START, period_end=SEED_AS_OF, as_of=SEED_AS_OF
            )  # fmt: skip
        )
    ]
    metrics = requests.closure_metrics(demo_copy.dbs, DEFAULT_START, SEED_AS_OF)
    rate = f"{metrics.attrs['on_time_rate']:.0%}"
    answered = metrics.attrs["answered"]
    # Norwegian first (letters.languages), Markdown-escaped on screen.
    shown = texts(at.markdown)
    assert ui.escape_markdown(f"Besvart: {answered}. Andel i tide: {rate}.") in shown
    at.radio(key="inspection_language").set_value("en").run(timeout=120)
    shown = texts(at.markdown)
    assert ui.escape_markdown(f"Answered: {answered}. On time: {rate}.") in shown


def test_the_dpo_prepares_and_downloads_the_pack_and_it_is_audited(demo_copy):
    at = open_page()
    at.button(key="inspection_prepare").click().run(timeout=180)

    assert_clean(at)
    name = f"inspection-pack-{DEFAULT_START.isoformat()}-{SEED_AS_OF.isoformat()}.zip"
    assert f"Prepared {name}" in texts(at.success)
    download = at.download_button(key="inspection_download")
    assert download.label == f"Download {name}"
    data = at.session_state["inspection_pack_prepared"]["data"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert "00-cover-letter.nb.pdf" in names and "00-cover-letter.en.pdf" in names
        assert archive.read("07-audit-log/audit-log.en.pdf").startswith(b"%PDF")
    with demo_copy.dbs.ledger.connect() as conn:
        entries = conn.execute(
            select(lt.audit_log.c.actor, lt.audit_log.c.target).where(
                lt.audit_log.c.action == "prepare_inspection_pack"
            )
        ).all()
    assert entries == [("demo@localhost", f"period:{DEFAULT_START}..{SEED_AS_OF}")]


def test_r41_a_viewer_sees_the_preview_but_cannot_prepare_or_download(demo_copy):
    at = open_page(seeded.VIEWER_EMAIL)

    assert_clean(at)
    assert len(at.expander) == len(inspection.SECTIONS)
    assert "Actions are for the DPO role" in texts(at.caption)
    assert not [
        b for b in at.button if b.key in ("inspection_prepare", "inspection_prepare_report")
    ]
    assert not at.get("download_button")


def test_a_period_ending_after_today_is_refused(demo_copy):
    at = open_page()
    at.date_input(key="inspection_end").set_value(SEED_AS_OF + timedelta(days=3))
    at.button(key="FormSubmitter:inspection_period-Show the period").click().run(timeout=120)

    assert "after the day the pack is prepared" in texts(at.error)
    assert not at.expander
    assert not [b for b in at.button if b.key == "inspection_prepare"]
    assert isinstance(at.session_state["inspection_start"], date)


def test_the_dpo_prepares_and_downloads_the_yearly_report(demo_copy):
    at = open_page()
    at.selectbox(key="inspection_report_year").set_value(SEED_AS_OF.year).run(timeout=120)
    at.button(key="inspection_prepare_report").click().run(timeout=240)

    assert_clean(at)
    name = f"dpo-report-{SEED_AS_OF.year}.zip"
    assert at.download_button(key="inspection_report_download").label == f"Download {name}"
    data = at.session_state["inspection_report_prepared"]["data"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
    assert {f"dpo-report-{SEED_AS_OF.year}.{lang}.pdf" for lang in ("nb", "en")} <= names
    assert {f"charts/requests.{lang}.png" for lang in ("nb", "en")} <= names


def test_a_database_failure_while_preparing_is_shown_in_words(demo_copy, monkeypatch):
    from sqlalchemy.exc import OperationalError

    @stores.writes(*stores.AUDIT)
    def broken(*args, **kwargs):
        raise OperationalError("SELECT secret FROM ledger", {}, Exception("disk I/O error"))

    at = open_page()
    monkeypatch.setattr(inspection, "pack", broken)
    at.button(key="inspection_prepare").click().run(timeout=120)

    assert not at.exception
    shown = texts(at.error)
    assert "The inspection pack was not prepared: could not read the data" in shown
    assert "SELECT" not in shown
    assert not at.get("download_button")
