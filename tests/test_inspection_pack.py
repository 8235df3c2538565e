"""The inspection pack (GDPR art. 5(2), 30; RULES.md R2-R6, R12-R18, R21-R24, R30-R32): every
section in both languages as HTML and PDF with its CSV, the figures equal to the pages' own
functions for the same period, no data subject's e-mail or name in any file, the on-time
rate counted against the working-day deadline, and the preparation audited.

Built once on a private copy of the seeded small demo in which a DPO erased one person and
purged three support contacts, so that the receipts and runs sections hold rows.
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from data_access import (
    audit,
    clock,
    consent,
    export,
    holds,
    inspection,
    register,
    requests,
    retention,
    subjects,
)
from data_access import ledger_tables as lt
from data_access import tables as t
from data_access.engines import Databases
from data_access.inspection import assemble
from data_access.settings import STORES
from tests import inspection_support as support
from tests import seeded
from tests.conftest import SEED_AS_OF
from tests.factories import add_account, add_contact, add_request

seeded_demo = seeded.seeded_demo
DPO = "dpo@plaato.example"
START = date(2025, 12, 1)
LANGUAGES = ("nb", "en")


class Built:
    def __init__(self, dbs, needles, data, parts, erased_email):
        self.dbs, self.needles, self.data, self.parts = dbs, needles, data, parts
        self.erased_email = erased_email
        self.archive = zipfile.ZipFile(io.BytesIO(data))

    def read(self, name: str) -> bytes:
        return self.archive.read(name)


@pytest.fixture(scope="module")
def built(seeded_demo, tmp_path_factory) -> Built:
    folder = seeded.copy_demo(seeded_demo.folder, tmp_path_factory.mktemp("inspection"))
    urls = {store: f"sqlite:///{folder / f'{store}.sqlite'}" for store in STORES}
    dbs = Databases.from_urls(
        **urls, pseudonym_key=seeded.PSEUDONYM_KEY, anchors_file=folder / "anchors.log"
    )
    needles = support.subject_needles(dbs)  # before the erasure removes one person
    with dbs.users.connect() as conn:
        email = conn.execute(
            select(t.accounts.c.email).order_by(t.accounts.c.id).limit(1)
        ).scalar_one()
    receipt = subjects.erase_subject(dbs, email, actor=DPO, as_of=SEED_AS_OF)
    assert receipt.status == "done"
    contacts = retention.support_contacts_past_retention(dbs, SEED_AS_OF)
    ids = [int(i) for i in contacts.loc[~contacts["on_hold"], "contact_id"].head(3)]
    purged = retention.purge_support_contacts(dbs, ids, actor=DPO, as_of=SEED_AS_OF)
    assert sorted(purged.succeeded) == sorted(ids)
    audit.write_anchor(dbs)
    ctx = inspection.context(dbs, period_start=START, period_end=SEED_AS_OF, as_of=SEED_AS_OF)
    parts = inspection.build_parts(ctx)
    data = inspection.pack(
        dbs, period_start=START, period_end=SEED_AS_OF, actor=DPO, as_of=SEED_AS_OF
    )
    yield Built(dbs, needles, data, parts, email)
    dbs.dispose()


def csv_in(built: Built, path: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(built.read(path)), sep=";", encoding="utf-8-sig", dtype=str)


# --- every section, both languages -------------------------------------------------------


def test_every_section_is_in_the_zip_in_both_languages_as_html_and_pdf(built):
    names = set(built.archive.namelist())
    keys = [part.key for part in built.parts]
    assert len(keys) == len(assemble.SECTIONS) == 9
    for lang in LANGUAGES:
        assert f"00-cover-letter.{lang}.html" in names
        assert f"00-cover-letter.{lang}.pdf" in names
    for part in built.parts:
        stem = part.key.split("-", 1)[1]
        for lang in LANGUAGES:
            html = built.read(f"{part.key}/{stem}.{lang}.html").decode("utf-8")
            assert f'<html lang="{lang}">' in html
            assert f"<h1>{part.titles[lang]}</h1>" in html
            assert built.read(f"{part.key}/{stem}.{lang}.pdf").startswith(b"%PDF")
        for table in part.tables:
            assert f"{part.key}/{table}.csv" in names
            assert f"{part.key}/{table}.xlsx" in names
    # The Norwegian and the English documents differ in words, not in figures.
    nb = built.read("03-data-subject-requests/data-subject-requests.nb.html").decode()
    en = built.read("03-data-subject-requests/data-subject-requests.en.html").decode()
    assert "Henvendelser fra registrerte" in nb and "Data-subject requests" in en


def test_the_cover_letter_names_the_controller_the_contact_and_every_section(built):
    for lang in LANGUAGES:
        letter = support.pdf_text(built.read(f"00-cover-letter.{lang}.pdf"))
        assert "Plaato Technologies AS" in letter
        assert "privacy@plaato.example" in letter
        for part in built.parts:
            assert f"{part.key}/" in letter
    # Every other file of the pack is listed with what it holds.
    listed = assemble.file_list(inspection.context(built.dbs, period_start=START,
                                period_end=SEED_AS_OF, as_of=SEED_AS_OF), built.parts, "en")  # fmt: skip
    others = {n for n in built.archive.namelist() if not n.startswith("00-cover-letter")}
    assert set(listed["file"]) == others
    html = built.read("00-cover-letter.en.html").decode()
    assert all(f"<td>{name}</td>" in html for name in others)


def test_request_figures_equal_the_requests_page_for_the_period(built):
    metrics = requests.closure_metrics(built.dbs, START, SEED_AS_OF)
    assert metrics.attrs["answered"] > 0
    path = "03-data-subject-requests/requests-answered-by-month.csv"
    assert built.read(path) == export.to_csv_bytes(metrics)
    rate = f"{metrics.attrs['on_time_rate']:.0%}"
    median = f"{metrics.attrs['median_days_to_close']:.0f}"
    en = built.read("03-data-subject-requests/data-subject-requests.en.html").decode()
    assert f"Answered: {metrics.attrs['answered']:,}. On time: {rate}." in en
    assert f"Median days from receipt to answer: {median}." in en
    nb = support.pdf_text(built.read("03-data-subject-requests/data-subject-requests.nb.pdf"))
    assert f"Andel i tide: {rate}" in nb
    by_type = csv_in(built, "03-data-subject-requests/requests-by-type.csv")
    assert by_type["answered"].astype(int).sum() == metrics.attrs["answered"]


def test_register_consent_and_audit_figures_equal_the_pages(built):
    assert built.read("01-record-of-processing/register-findings.csv") == export.to_csv_bytes(
        register.findings(built.dbs, SEED_AS_OF)
    )
    recipients = csv_in(built, "01-record-of-processing/recipients.csv")
    assert recipients["name"].tolist() == register.recipients(built.dbs)["name"].tolist()
    assert {"dpa_signed_on", "role", "transfer_mechanism", "dpf_checked_on"} <= set(recipients)
    assert built.read("02-cookie-register/cookies.csv") == export.to_csv_bytes(
        register.cookies(built.dbs)[inspection.register_part.COOKIE_COLUMNS]
    )
    assert built.read("06-consent/consent-rates.csv") == export.to_csv_bytes(
        consent.consent_rates(built.dbs, SEED_AS_OF)
    )
    withdrawn = consent.withdrawals(built.dbs, START, SEED_AS_OF)
    by_version = csv_in(built, "06-consent/withdrawals-by-notice-version.csv")
    assert by_version["withdrawals"].astype(int).sum() == withdrawn["withdrawals"].sum() > 0
    r22 = consent.processing_without_consent_counts(built.dbs, SEED_AS_OF)
    found = csv_in(built, "06-consent/processing-without-consent.csv")
    assert dict(zip(found["finding"], found["count"].astype(int), strict=True)) == r22
    verification = csv_in(built, "07-audit-log/audit-verification.csv").set_index("figure")
    assert verification.loc["intact", "value"] == "true"
    # The pack's own entry comes after the check: the chain held one entry less then.
    assert int(verification.loc["entries", "value"]) == audit.verify_chain(built.dbs).entries - 1
    assert len(csv_in(built, "07-audit-log/audit-anchors.csv")) >= 1
    actors = csv_in(built, "07-audit-log/audit-actors.csv")
    assert DPO in actors["actor"].tolist()


def test_retention_runs_holds_and_receipts_of_the_period(built):
    runs = csv_in(built, "04-retention-evidence/enforcement-runs.csv")
    purge = runs[runs["kind"] == "support_purge"]
    assert purge["targets"].astype(int).tolist() == [3]
    assert purge["actor"].tolist() == [DPO] and purge["as_of"].tolist() == [str(SEED_AS_OF)]
    held = csv_in(built, "04-retention-evidence/legal-holds.csv")
    every = holds.all_holds(built.dbs, SEED_AS_OF)
    assert set(held["hold_id"].astype(int)) <= set(every["id"])
    assert held["review_on"].notna().all() and held["reason"].notna().all()
    receipts = csv_in(built, "05-erasure-and-deletion-receipts/erasure-receipts.csv")
    assert receipts["subject_ref"].tolist() == [audit.keyed_hash(built.dbs, built.erased_email)]
    assert receipts["residue"].astype(int).tolist() == [0]
    scans = csv_in(built, "05-erasure-and-deletion-receipts/residue-scans.csv")
    assert set(scans["receipt_id"].astype(int)) <= set(receipts["receipt_id"].astype(int))


# --- no data subject in the pack ------------------------------------------------------------


def test_r51_the_breach_log_lists_every_breach_of_the_period_with_its_decisions(built):
    from data_access import breaches

    every = breaches.breach_list(built.dbs, SEED_AS_OF, limit=10_000)
    inside = every[
        (every["aware_at"] >= clock.day_start_utc(START))
        & (every["aware_at"] <= clock.day_end_utc(SEED_AS_OF))
    ]
    log = csv_in(built, "08-breach-log/breaches.csv")
    assert sorted(int(i) for i in log["breach_id"]) == sorted(int(i) for i in inside["breach_id"])
    assert len(log) > 0
    assert "title" not in log.columns  # free text that may name someone
    decided_not = every.loc[every["notify_decision"].eq(False), "breach_id"]
    assert set(decided_not) & set(inside["breach_id"]) <= {
        int(i) for i in log.loc[log["notify_reasoning"].notna(), "breach_id"]
    }


def test_the_retention_schedule_and_daily_runs_section(built):
    from data_access.daily import schedule

    plan = csv_in(built, "09-daily-run/retention-schedule.csv")
    assert plan["category"].tolist() == list(
        schedule.retention_schedule(built.dbs, SEED_AS_OF)["category"]
    )
    assert "09-daily-run/daily-runs.csv" in built.archive.namelist()


def test_no_file_in_the_pack_holds_a_subjects_email_or_name(built):
    texts = support.zip_texts(built.data)
    assert len(texts) == len(built.archive.namelist())
    assert built.erased_email.lower() in built.needles and len(built.needles) > 2000
    assert support.found_needles(texts, built.needles) == {}
    # The scan finds what is there: a person's name in a document would be caught.
    some = sorted(built.needles)[0]
    assert support.found_needles({"x.pdf": f"… {some.title()} …"}, built.needles)


def test_a_reason_naming_the_data_subject_is_redacted(empty_dbs):
    rid = add_request(empty_dbs, received_on=date(2026, 3, 2), request_type="access",
                      subject_email="kari@example.no", subject_name="Kari Nordmann")  # fmt: skip
    requests.refuse_request(empty_dbs, rid, reason="Kari Nordmann (KARI@example.no) asked twice",
                            actor=DPO, as_of=date(2026, 3, 10))  # fmt: skip
    data = inspection.pack(empty_dbs, period_start=date(2026, 3, 1),
                           period_end=date(2026, 3, 31), actor=DPO, as_of=date(2026, 4, 1))  # fmt: skip
    texts = support.zip_texts(data)
    assert support.found_needles(texts, {"kari@example.no", "kari nordmann"}) == {}
    refusals = texts["03-data-subject-requests/refusals.csv"]
    assert "[redacted] ([redacted]) asked twice" in refusals


# --- the on-time rate uses the R2-R5 deadline ---------------------------------------------


def test_r2_on_time_rate_uses_the_working_day_deadline_not_30_days(empty_dbs):
    # Received 2026-03-05: one month is 04-05, Easter Sunday; Easter Monday follows; the
    # deadline is Tuesday 2026-04-07 (R2). Answered on 04-07, 33 days later: on time,
    # although "30 days" would count it late.
    received, answered = date(2026, 3, 5), date(2026, 4, 7)
    assert received + timedelta(days=30) < answered
    rid = add_request(empty_dbs, received_on=received, request_type="objection")
    requests.complete_request(empty_dbs, rid, actor=DPO, as_of=answered,
                              checklist=["stopped", "grounds", "told"])  # fmt: skip
    # Received 2026-03-06, answered 04-09 (34 days): due 04-07, late under R2 too.
    late = add_request(empty_dbs, received_on=date(2026, 3, 6), request_type="objection")
    requests.complete_request(empty_dbs, late, actor=DPO, as_of=date(2026, 4, 9),
                              checklist=["stopped", "grounds", "told"])  # fmt: skip
    data = inspection.pack(empty_dbs, period_start=date(2026, 4, 1),
                           period_end=date(2026, 4, 30), actor=DPO, as_of=date(2026, 5, 4))  # fmt: skip
    texts = support.zip_texts(data)
    en = texts["03-data-subject-requests/data-subject-requests.en.html"]
    assert "Answered: 2. On time: 50%." in en  # 30 days would give 0 %
    monthly = pd.read_csv(io.StringIO(texts["03-data-subject-requests/requests-answered-by-month.csv"]),
                          sep=";")  # fmt: skip
    assert monthly[["on_time", "late"]].values.tolist() == [[1, 1]]


# --- bad input, audit -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (date(2026, 5, 1), date(2026, 4, 1), "starts (2026-05-01) after it ends"),
        (date(2026, 4, 1), date(2026, 6, 1), "after the day the pack is prepared"),
    ],
)
def test_a_bad_period_is_refused_and_nothing_is_audited(sqlite_dbs, start, end, message):
    before = audit.verify_chain(sqlite_dbs).entries
    with pytest.raises(ValueError, match=re.escape(message)):
        inspection.pack(sqlite_dbs, period_start=start, period_end=end, actor=DPO,
                        as_of=date(2026, 5, 4))  # fmt: skip
    assert audit.verify_chain(sqlite_dbs).entries == before


def test_preparing_the_pack_is_audited(built):
    with built.dbs.ledger.connect() as conn:
        rows = (
            conn.execute(
                select(lt.audit_log).where(lt.audit_log.c.action == "prepare_inspection_pack")
            )
            .mappings()
            .all()
        )
    assert len(rows) == 1
    assert rows[0]["actor"] == DPO
    assert rows[0]["target"] == f"period:{START.isoformat()}..{SEED_AS_OF.isoformat()}"
    assert audit.verify_chain(built.dbs) == (True, None)


def test_every_pdf_of_the_pack_renders_with_text_on_every_page(built):
    pdfs = [n for n in built.archive.namelist() if n.endswith(".pdf")]
    assert len(pdfs) == 2 * (len(built.parts) + 1)
    for name in pdfs:
        pages = support.pdf_pages(built.read(name), resolution=30)
        assert pages, name
        for number, (words, image) in enumerate(pages, start=1):
            assert words.strip(), f"{name} page {number} has no text"
            assert image.getextrema() != ((255, 255), (255, 255), (255, 255)), name


def test_r16_r17_r18_runs_holds_receipts_and_actors_on_every_backend(empty_dbs):
    # Today: audit entries are stamped with the clock, jobs with their effective date.
    dbs, day = empty_dbs, clock.today_oslo()
    old = add_contact(
        dbs, started_on=date(2026, 1, 5), email="per@example.no", full_name="Per Hansen"
    )
    add_account(dbs, email="ola@example.no", full_name="Ola Nordmann")
    assert retention.purge_support_contacts(dbs, [old], actor=DPO, as_of=day).succeeded == [old]
    holds.place_hold(dbs, email="ola@example.no", reason="Tvist om faktura for Ola Nordmann",
                     case_ref="SAK-1", review_on=date(2027, 11, 1), actor=DPO, as_of=day)  # fmt: skip
    receipt = subjects.erase_subject(dbs, "per@example.no", actor=DPO, as_of=day)
    assert receipt.status == "done"
    ctx = inspection.context(dbs, period_start=day - timedelta(days=1), period_end=day, as_of=day)

    parts = {part.key: part for part in inspection.build_parts(ctx)}

    runs = parts["04-retention-evidence"].tables["enforcement-runs"]
    assert runs[["kind", "actor", "targets"]].values.tolist() == [["support_purge", DPO, 1]]
    logged = parts["04-retention-evidence"].tables["retention-audit-entries"]
    assert logged.loc[logged["rule"] == "R16", "entries"].tolist() == [1]
    held = parts["04-retention-evidence"].tables["legal-holds"]
    assert held["target"].tolist() == [audit.keyed_hash(dbs, "ola@example.no")]
    erased = parts["05-erasure-and-deletion-receipts"].tables["erasure-receipts"]
    assert erased["subject_ref"].tolist() == [audit.keyed_hash(dbs, "per@example.no")]
    actors = parts["07-audit-log"].tables["audit-actors"]
    assert actors["actor"].tolist() == [DPO] and actors["entries"].tolist()[0] >= 3
    data = inspection.pack(dbs, period_start=ctx.period_start, period_end=day, actor=DPO, as_of=day)
    needles = {"ola@example.no", "ola nordmann", "per@example.no", "per hansen"}
    assert support.found_needles(support.zip_texts(data), needles) == {}
