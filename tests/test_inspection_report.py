"""The DPO's yearly report (GDPR art. 38(3), 39): the year's figures equal to the pages',
trend charts rendered to PNG (plotly via kaleido and the local Chromium) and placed in the
PDF, every PDF page legible (pdftoppm images, pdftotext text), both languages, no data
subject named, and the report still made, saying so, when the charts cannot be rendered.
"""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pytest
from PIL import Image

from data_access import audit, consent, export, findings, inspection, requests, retention
from data_access.engines import Databases
from data_access.inspection import charts
from data_access.settings import STORES
from tests import inspection_support as support
from tests import seeded
from tests.conftest import SEED_AS_OF

seeded_demo = seeded.seeded_demo
DPO = "dpo@plaato.example"
YEAR = SEED_AS_OF.year
LANGUAGES = ("nb", "en")
CHARTS = ("requests", "consent", "retention")
# A chart has lines or bars in colour; a blank one (axes only) has almost none.
MIN_COLOURED = 2000


@pytest.fixture(scope="module")
def dbs(seeded_demo, tmp_path_factory):
    folder = seeded.copy_demo(seeded_demo.folder, tmp_path_factory.mktemp("report"))
    urls = {store: f"sqlite:///{folder / f'{store}.sqlite'}" for store in STORES}
    dbs = Databases.from_urls(**urls, pseudonym_key=seeded.PSEUDONYM_KEY)
    contacts = retention.support_contacts_past_retention(dbs, SEED_AS_OF)
    ids = [int(i) for i in contacts.loc[~contacts["on_hold"], "contact_id"].head(5)]
    assert retention.purge_support_contacts(dbs, ids, actor=DPO, as_of=SEED_AS_OF).succeeded
    yield dbs
    dbs.dispose()


@pytest.fixture(scope="module")
def report(dbs) -> zipfile.ZipFile:
    data = inspection.dpo_report(dbs, year=YEAR, actor=DPO, as_of=SEED_AS_OF)
    return zipfile.ZipFile(io.BytesIO(data))


def test_the_report_has_both_languages_and_every_chart(report):
    names = set(report.namelist())
    for lang in LANGUAGES:
        assert f"dpo-report-{YEAR}.{lang}.pdf" in names
        assert f"dpo-report-{YEAR}.{lang}.html" in names
        for chart in CHARTS:
            assert f"charts/{chart}.{lang}.png" in names
    nb = report.read(f"dpo-report-{YEAR}.nb.html").decode()
    assert f"Personvernombudets årsrapport {YEAR}" in nb and "data:image/png;base64," in nb


def test_chart_images_are_not_blank(report):
    for lang in LANGUAGES:
        for chart in CHARTS:
            with Image.open(io.BytesIO(report.read(f"charts/{chart}.{lang}.png"))) as image:
                assert image.size == (charts.WIDTH * charts.SCALE, charts.HEIGHT * charts.SCALE)
                small = image.convert("RGB").resize((450, 210))
                assert support.coloured_pixels(small) > 500, f"{chart}.{lang}.png is blank"


def test_every_pdf_page_has_text_and_the_charts_are_printed(report):
    for lang in LANGUAGES:
        pages = support.pdf_pages(report.read(f"dpo-report-{YEAR}.{lang}.pdf"))
        assert len(pages) >= 2
        for number, (words, _image) in enumerate(pages, start=1):
            assert len(words.split()) > 20, f"page {number} ({lang}) has no text"
        coloured = [support.coloured_pixels(image) for _words, image in pages]
        # Three charts on at least two pages; documents print text in black and grey only.
        assert sum(c > MIN_COLOURED for c in coloured) >= 2, coloured
        everything = "\n".join(words for words, _ in pages)
        heading = "Sammendrag" if lang == "nb" else "Summary"
        assert heading in everything


def test_the_years_figures_equal_the_pages(dbs, report):
    start = date(YEAR, 1, 1)
    metrics = requests.closure_metrics(dbs, start, SEED_AS_OF)
    assert report.read("requests-answered-by-month.csv") == export.to_csv_bytes(metrics)
    assert report.read("consent-trend.csv") == export.to_csv_bytes(
        consent.consent_trend(dbs, start, SEED_AS_OF)
    )
    assert report.read("policy-findings.csv") == export.to_csv_bytes(
        findings.policy_findings(dbs, SEED_AS_OF)
    )
    en = support.pdf_text(report.read(f"dpo-report-{YEAR}.en.pdf"))
    rate = f"{metrics.attrs['on_time_rate']:.0%}"
    assert f"{metrics.attrs['answered']} answered, {rate} on time" in " ".join(en.split())


def test_the_report_names_no_data_subject(dbs, report):
    texts = {}
    for name in report.namelist():
        raw = report.read(name)
        if name.endswith(".pdf"):
            texts[name] = support.pdf_text(raw)
        elif not name.endswith(".png"):
            texts[name] = raw.decode("utf-8-sig")
    assert support.found_needles(texts, support.subject_needles(dbs)) == {}


def test_without_a_browser_the_report_says_its_charts_are_missing(dbs, monkeypatch):
    def unavailable(figures):
        raise charts.ChartsUnavailable("no browser for kaleido")

    monkeypatch.setattr(charts, "render", unavailable)
    before = audit.verify_chain(dbs).entries
    data = inspection.dpo_report(dbs, year=YEAR, actor=DPO, as_of=SEED_AS_OF)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert not [n for n in archive.namelist() if n.endswith(".png")]
    en = support.pdf_text(archive.read(f"dpo-report-{YEAR}.en.pdf"))
    assert "The chart is missing: no browser for kaleido" in en
    assert audit.verify_chain(dbs).entries == before + 1  # prepared, and audited


def test_a_year_not_begun_is_refused(dbs):
    with pytest.raises(ValueError, match="has not begun"):
        inspection.dpo_report(dbs, year=YEAR + 1, actor=DPO, as_of=SEED_AS_OF)
