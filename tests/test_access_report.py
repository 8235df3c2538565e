"""The access report (RULES.md R9) and the portability export (R10): every stored row of the
person in data.json and in the CSVs, every R9 item in the letter in Norwegian and English,
nobody else's rows, and the download audited without the e-mail (R18)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import replace
from datetime import date, datetime

from sqlalchemy import insert, select

from data_access import access_letter, audit, holds, requests, subjects
from data_access import ledger_tables as lt
from data_access.settings import Policy
from tests import factories as f

AS_OF = date(2026, 11, 29)
EMAIL = "aase.odegard@example.no"
NAME = "Åse <b>Ødegård</b>"  # markup in a name must arrive as text in the HTML letter
ACTOR = "dpo@plaato.example"
TABLES = list(subjects.TABLES)


def seed_person(dbs) -> dict[str, list[int]]:
    """Åse has a row in every one of the twelve tables; Ola, a neighbour, has some too."""
    ids: dict[str, list[int]] = {name: [] for name in TABLES}
    account = f.add_account(dbs, email=EMAIL, full_name=NAME, last_active_on=date(2025, 1, 5))
    ids["users.accounts"].append(account)
    other = f.add_account(dbs, email="ola@example.no", full_name="Ola Nordmann")
    ids["users.account_members"].append(
        f.add_member(dbs, other, email=" AASE.Odegard@example.no", full_name=NAME)
    )
    f.add_member(dbs, account, email="kollega@example.no", full_name="Kollega Kari")
    ids["users.invoices"].append(
        f.add_invoice(dbs, issued_on=date(2025, 6, 1), account_id=account, customer_name=NAME)
    )
    f.add_invoice(dbs, issued_on=date(2025, 6, 1), account_id=other, customer_name="Ola")
    ids["users.usage_sessions"] += [
        f.add_usage_session(dbs, account, on=date(2025, 1, d)) for d in (3, 4, 5)
    ]
    f.add_usage_session(dbs, other, on=date(2025, 1, 3))
    ids["consent.consent_events"] += [
        f.add_consent_event(
            dbs,
            purpose="usage_statistics",
            action="granted",
            on=date(2024, 1, 1),
            account_id=account,
        ),
        f.add_consent_event(
            dbs,
            purpose="newsletter",
            action="granted",
            on=date(2024, 1, 1),
            email="Aase.Odegard@Example.no",
        ),
    ]
    f.add_consent_event(
        dbs, purpose="newsletter", action="granted", on=date(2024, 1, 1), email="ola@example.no"
    )
    ids["consent.newsletter_subscribers"].append(f.add_subscriber(dbs, email=EMAIL.upper()))
    ids["support.contacts"] += [
        f.add_contact(dbs, started_on=date(2026, 10, 1), email=EMAIL, phone="+47 912 34 567"),
        f.add_contact(dbs, started_on=date(2026, 9, 1), account_id=account, email=None),
    ]
    f.add_contact(dbs, started_on=date(2026, 10, 1), email="ola@example.no")
    request_id = f.add_request(
        dbs,
        received_on=date(2026, 11, 20),
        subject_email="Aase.Odegard@example.no",
        subject_name=NAME,
    )
    ids["support.data_subject_requests"].append(request_id)
    requests.confirm_identity(
        dbs,
        request_id,
        method="Reply from the account e-mail",
        actor=ACTOR,
        as_of=date(2026, 11, 21),
    )
    ids["ledger.request_cases"].append(request_id)
    with dbs.ledger.begin() as conn:
        outbox_id = conn.execute(
            insert(lt.outbox).values(
                created_at=datetime(2026, 1, 10, 9, 0),
                kind="inactivity_notice",
                to_email=EMAIL,
                subject_ref=audit.keyed_hash(dbs, EMAIL),
                subject="Kontoen din slettes",
                body="Hei Åse",
                status="sent",
                attempts=1,
            )
        ).inserted_primary_key[0]
        notice_id = conn.execute(
            insert(lt.notices).values(
                account_id=account,
                sent_on=date(2026, 1, 10),
                created_at=datetime(2026, 1, 10, 9, 0),
                actor=ACTOR,
                last_activity_on=date(2025, 1, 5),
                deletable_on=date(2026, 2, 9),
                outbox_id=outbox_id,
            )
        ).inserted_primary_key[0]
    ids["ledger.outbox"].append(outbox_id)
    ids["ledger.notices"].append(notice_id)
    ids["ledger.legal_holds"].append(
        holds.place_hold(
            dbs,
            email=EMAIL,
            reason="Dispute about an invoice",
            case_ref="SAK-2026-17",
            actor=ACTOR,
            as_of=date(2026, 11, 1),
        )
    )
    add_register(dbs)
    return ids


def add_register(dbs) -> None:
    """Three recipients as the policy names them, a social media page that receives no
    personal data, and the record of processing the three serve."""
    base = {
        "named_in_policy": True,
        "receives_personal_data": True,
        "legal_name": None,
        "purpose": None,
        "tia_on": None,
        "dpf_checked_on": None,
    }
    with dbs.ledger.begin() as conn:
        conn.execute(
            insert(lt.recipients),
            [
                {
                    **base,
                    "name": "US payment processor",
                    "legal_name": "PayCo Inc.",
                    "role": "processor",
                    "purpose": "Card payments",
                    "country": "US",
                    "transfer_mechanism": "scc",
                    "tia_on": date(2025, 3, 1),
                },
                {
                    **base,
                    "name": "Google Analytics",
                    "legal_name": "Google Ireland Ltd",
                    "role": "processor",
                    "purpose": "Website statistics",
                    "country": "US",
                    "transfer_mechanism": "dpf",
                    "dpf_checked_on": date(2026, 10, 1),
                },
                {
                    **base,
                    "name": "Website provider",
                    "legal_name": "Fjordweb AS",
                    "role": "processor",
                    "purpose": "Hosting",
                    "country": "NO",
                    "transfer_mechanism": "eea",
                },
                {
                    **base,
                    "name": "LinkedIn",
                    "role": "joint_controller",
                    "country": "IE",
                    "transfer_mechanism": "eea",
                    "receives_personal_data": False,
                    "named_in_policy": False,
                },
            ],
        )
        conn.execute(
            insert(lt.processing_activities),
            [
                {
                    "name": "Customer accounts",
                    "purpose": "Accounts",
                    "legal_basis": "art. 6(1)(b)",
                    "recipients": "Website provider",
                },
                {
                    "name": "Invoicing and bookkeeping",
                    "purpose": "Invoices",
                    "legal_basis": "art. 6(1)(c)",
                    "recipients": "US payment processor",
                },
                {
                    "name": "Customer service and sales",
                    "purpose": "Support",
                    "legal_basis": "art. 6(1)(b)",
                    "recipients": "Website provider",
                },
            ],
        )


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def csv_ids(data: bytes, column: str) -> list[int]:
    text = data.decode("utf-8")
    assert text.startswith("\ufeff"), "Excel dialect (R40): UTF-8 with BOM"
    rows = list(csv.DictReader(io.StringIO(text[1:]), delimiter=";"))
    return [int(r[column]) for r in rows]


KEY = {"ledger.request_cases": "request_id"}


def test_r9_access_report_holds_every_row_of_the_person_and_no_one_elses(empty_dbs):
    ids = seed_person(empty_dbs)

    files = unzip(subjects.access_report(empty_dbs, "  Aase.ODEGARD@example.no ", as_of=AS_OF))

    assert sorted(files) == sorted(
        ["data.json", "letter.md", "letter.html", *(f"{t}.csv" for t in TABLES)]
    )
    data = json.loads(files["data.json"])
    assert (data["subject"], data["generated_on"]) == (EMAIL, "2026-11-29")
    assert data["controller"] == "Plaato Technologies AS"
    for table in TABLES:
        key = KEY.get(table, "id")
        expected = sorted(ids[table])
        assert expected, f"the fixture must give the person a row in {table}"
        assert [row[key] for row in data["tables"][table]] == expected, table
        assert csv_ids(files[f"{table}.csv"], key) == expected, table
    account = data["tables"]["users.accounts"][0]
    assert (account["email"], account["full_name"]) == (EMAIL, NAME)
    assert account["last_active_at"] == "2025-01-05T11:00:00"
    assert data["tables"]["users.invoices"][0]["amount"] == "499.00"
    assert data["tables"]["users.invoices"][0]["issued_on"] == "2025-06-01"
    contact = data["tables"]["support.contacts"][0]
    assert contact["phone"] == "+47 912 34 567"
    assert data["tables"]["ledger.request_cases"][0]["identity_method"] == (
        "Reply from the account e-mail"
    )
    everything = files["data.json"].decode("utf-8")
    assert "ola@example.no" not in everything and "kollega@example.no" not in everything
    # Deterministic: the same data and date give the same bytes.
    assert subjects.access_report(empty_dbs, EMAIL, as_of=AS_OF) == subjects.access_report(
        empty_dbs, EMAIL, as_of=AS_OF
    )


def test_r9_letter_covers_every_item_in_norwegian_and_english(sqlite_dbs):
    seed_person(sqlite_dbs)

    files = unzip(subjects.access_report(sqlite_dbs, EMAIL, as_of=AS_OF))
    markdown = files["letter.md"].decode("utf-8")
    page = files["letter.html"].decode("utf-8")

    for item, headings in access_letter.R9_ITEMS.items():
        for lang in ("nb", "en"):
            assert headings[lang] in page, (item, lang)
            assert headings[lang].replace("-", "\\-") in markdown or headings[lang] in markdown
    nb, en = page.split('<section lang="en">')
    facts = {
        # purposes and legal basis
        "nb": [
            "tilbakestille passord",
            "art. 6 nr. 1 bokstav b",
            "bokføringsloven § 13",
            "Samtykket ditt (art. 6 nr. 1 bokstav a)",
            # retention from Policy
            "inaktiv i 12 måneder",
            "minst 30 dager før",
            "5 år etter utløpet av regnskapsåret",
            "31.12.",
            "6 måneder etter henvendelsen",
            # named recipients, per category and in full
            "Website provider (Fjordweb AS)",
            "US payment processor (PayCo Inc.)",
            "Google Analytics",
            "databehandler",
            # source
            "Deg, da du kontaktet oss.",
            # US transfers
            "EU–US Data Privacy Framework",
            "oppføringen sist kontrollert 2026-10-01",
            "SCC, beslutning 2021/914",
            "(TIA) 2025-03-01",
            # rights, complaint, automated decisions
            "Retting (art. 16)",
            "Sletting (art. 17)",
            "Begrensning (art. 18)",
            "Protest (art. 21)",
            "klage til Datatilsynet",
            "Postboks 458 Sentrum",
            "Ingen. Vi treffer ingen avgjørelser",
        ],
        "en": [
            "reset passwords",
            "GDPR art. 6(1)(b)",
            "Bookkeeping Act § 13",
            "Your consent (GDPR art. 6(1)(a))",
            "inactive for 12 months",
            "at least 30 days before",
            "5 years after the end of the financial year",
            "6 months after the contact",
            "Website provider (Fjordweb AS)",
            "US payment processor (PayCo Inc.)",
            "processor",
            "You, when you contacted us.",
            "EU–US Data Privacy Framework",
            "listing last checked 2026-10-01",
            "decision 2021/914",
            "transfer impact assessment (TIA) 2025-03-01",
            "Rectification (art. 16)",
            "Erasure (art. 17)",
            "Restriction (art. 18)",
            "Objection (art. 21)",
            "lodge a complaint with Datatilsynet",
            "None. We make no decisions about you based solely on automated processing",
        ],
    }
    for text in facts["nb"]:
        assert text in nb, text
    for text in facts["en"]:
        assert text in en, text
    # The social media page receives nothing and is not listed as a recipient.
    assert "LinkedIn" not in page
    # Data values are escaped: the name's markup is text, not HTML.
    assert "Åse &lt;b&gt;Ødegård&lt;/b&gt;" in page and "<b>Ødegård" not in page
    assert "Åse \\<b\\>Ødegård\\</b\\>" in markdown
    # One line per table held, with its row count.
    assert "| Bruksstatistikk | users.usage\\_sessions.csv | 3 |" in markdown
    assert "| Usage statistics | users.usage\\_sessions.csv | 3 |" in markdown


def test_r9_letter_uses_the_policy_in_force(sqlite_dbs):
    seed_person(sqlite_dbs)
    sqlite_dbs.policy = replace(
        Policy(), account_inactivity_months=18, support_log_months=3, fiscal_year_end="06-30"
    )

    page = unzip(subjects.access_report(sqlite_dbs, EMAIL, as_of=AS_OF))["letter.html"].decode()

    assert "inaktiv i 18 måneder" in page and "inactive for 18 months" in page
    assert "3 måneder etter henvendelsen" in page and "3 months after the contact" in page
    assert "(som slutter 30.06.)" in page


def test_r9_a_person_without_data_gets_a_letter_saying_so(sqlite_dbs):
    files = unzip(subjects.access_report(sqlite_dbs, "nobody@example.no", as_of=AS_OF))

    data = json.loads(files["data.json"])
    assert all(rows == [] for rows in data["tables"].values())
    page = files["letter.html"].decode()
    assert "Vi har ingen personopplysninger om deg" in page
    assert "We hold no personal data about you" in page
    assert "We transfer no personal data to countries outside the EEA." in page


def test_r10_portability_export_holds_only_provided_and_observed_data(empty_dbs):
    ids = seed_person(empty_dbs)

    files = unzip(subjects.portability_export(empty_dbs, EMAIL, as_of=AS_OF))

    portable = [
        "users.accounts",
        "users.account_members",
        "users.usage_sessions",
        "consent.consent_events",
    ]
    assert sorted(files) == sorted(["data.json", *(f"{t}.csv" for t in portable)])
    data = json.loads(files["data.json"])
    assert sorted(data["tables"]) == sorted(portable)
    for table in portable:
        assert [r["id"] for r in data["tables"][table]] == sorted(ids[table])
        assert csv_ids(files[f"{table}.csv"], "id") == sorted(ids[table])
    assert "users.invoices.csv" not in files
    assert "invoice" not in files["data.json"].decode().lower()


def test_r9_prepared_report_is_audited_with_the_keyed_hash_only(empty_dbs):
    ids = seed_person(empty_dbs)
    request_id = ids["support.data_subject_requests"][0]
    with empty_dbs.ledger.connect() as conn:
        before = conn.execute(select(lt.audit_log.c.id)).all()

    report = requests.prepare_report(empty_dbs, request_id, actor=ACTOR, as_of=AS_OF)

    assert report.rows["users.usage_sessions"] == 3
    # The receipt prints the audit head, which the report's own entry ends, and anchors it.
    head = audit.latest_anchor(empty_dbs)
    assert report.audit_head == head.head_label == audit.current_head(empty_dbs).head_label
    assert sorted(unzip(report.data)) == sorted(
        ["data.json", "letter.md", "letter.html", *(f"{t}.csv" for t in TABLES)]
    )
    with empty_dbs.ledger.connect() as conn:
        entries = [
            dict(r)
            for r in conn.execute(
                select(lt.audit_log).where(lt.audit_log.c.id > len(before))
            ).mappings()
        ]
    assert [(e["action"], e["rule"], e["target"]) for e in entries] == [
        ("access_report", "R9", f"request:{request_id}")
    ]
    assert entries[0]["subject_ref"] == audit.keyed_hash(empty_dbs, EMAIL)
    assert json.loads(entries[0]["counts"])["users.usage_sessions"] == 3
    row_text = json.dumps({k: str(v) for k, v in entries[0].items()}).lower()
    assert "odegard" not in row_text and "ødegård" not in row_text
    event = requests.request_events(empty_dbs, request_id).iloc[-1]
    details = json.loads(event["details"])
    assert (event["event"], details["kind"], details["file_name"]) == (
        "report_prepared",
        "access",
        "access-report-2026-11-29.zip",
    )
    assert len(details["sha256"]) == 64
