"""The register and its findings (RULES.md R24, R30-R32), on SQLite, PostgreSQL and MariaDB.

Each R32 finding is produced by one crafted change to a register that has none, and goes
away again when the change is undone.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import delete, insert, update

from data_access import register
from data_access.ledger_tables import cookies, processing_activities, recipients
from data_access.settings import PolicyFacts, Settings

AS_OF = date(2026, 11, 29)

CLEAN_RECIPIENTS = [
    {
        "name": "US payment processor",
        "legal_name": "Example Payments Inc.",
        "role": "processor",
        "country": "US",
        "dpa_signed_on": date(2025, 1, 10),
        "transfer_mechanism": "dpf",
        "dpf_checked_on": date(2026, 11, 1),
    },
    {
        "name": "Google Analytics",
        "legal_name": "Google Ireland Limited",
        "role": "processor",
        "country": "IE",
        "dpa_signed_on": date(2025, 1, 10),
        "transfer_mechanism": "eea",
    },
    {
        "name": "Facebook Pixel",
        "legal_name": "Meta Platforms Ireland Limited",
        "role": "joint_controller",
        "country": "IE",
        "transfer_mechanism": "eea",
    },
    {
        "name": "Website provider",
        "legal_name": "Nettsideleverandøren AS",
        "role": "processor",
        "country": "NO",
        "dpa_signed_on": date(2024, 5, 2),
        "transfer_mechanism": "eea",
    },
    *(
        {
            "name": platform,
            "legal_name": legal_name,
            "role": "joint_controller",
            "country": "IE",
            "transfer_mechanism": "eea",
        }
        for platform, legal_name in [
            ("Facebook", "Meta Platforms Ireland Limited"),
            ("Instagram", "Meta Platforms Ireland Limited"),
            ("YouTube", "Google Ireland Limited"),
            ("LinkedIn", "LinkedIn Ireland Unlimited Company"),
        ]
    ),
]
CLEAN_COOKIES = [
    ("_ga", "Google", "third", "statistics", "2 years", True),
    ("_fbp", "Meta", "third", "marketing", "3 months", True),
    ("session", "Plaato", "first", "strictly_necessary", "session", False),
]
SOCIAL_MEDIA = ["Facebook", "Instagram", "LinkedIn", "YouTube"]


@pytest.fixture
def dbs(empty_dbs):
    """A register with no R32 or R24 finding on AS_OF."""
    with empty_dbs.ledger.begin() as conn:
        conn.execute(
            insert(recipients),
            [
                {
                    "purpose": "As the privacy policy says",
                    "data_categories": "name, e-mail",
                    "tia_on": None,
                    "dpa_signed_on": None,
                    "dpf_checked_on": None,
                    "last_review_on": date(2026, 6, 1),
                    "named_in_policy": True,
                    "receives_personal_data": True,
                    **row,
                }
                for row in CLEAN_RECIPIENTS
            ],
        )
        conn.execute(
            insert(cookies),
            [
                {
                    "name": name,
                    "provider": provider,
                    "party": party,
                    "category": category,
                    "lifetime": lifetime,
                    "consent_required": required,
                }
                for name, provider, party, category, lifetime, required in CLEAN_COOKIES
            ],
        )
    return empty_dbs


def change_recipient(dbs, name: str, **values) -> None:
    with dbs.ledger.begin() as conn:
        conn.execute(update(recipients).where(recipients.c.name == name).values(**values))


def non_baseline(dbs) -> list[tuple[str, str, str, str]]:
    """Findings other than the standing R31 social media ones: (severity, area, item, rule)."""
    frame = register.findings(dbs, AS_OF)
    frame = frame[frame["rule"] != "R31"]
    return list(frame[["severity", "area", "item", "rule"]].itertuples(index=False, name=None))


def finding_text(dbs, item: str) -> str:
    frame = register.findings(dbs, AS_OF)
    return " ".join(frame[frame["item"] == item]["finding"])


def test_r31_clean_register_has_only_the_social_media_findings(dbs):
    frame = register.findings(dbs, AS_OF)

    assert list(frame.columns) == register.FINDING_COLUMNS
    assert frame[["severity", "area", "item", "rule"]].to_dict("records") == [
        {"severity": "medium", "area": "processing", "item": p, "rule": "R31"} for p in SOCIAL_MEDIA
    ]
    assert "not available to us" in frame.iloc[0]["finding"]
    assert "records the joint controllership" in frame.iloc[0]["finding"]
    assert register.findings_count(dbs, AS_OF) == {"high": 0, "medium": 4, "low": 0}


def test_r31_a_platform_missing_from_the_register_is_still_a_finding(dbs):
    with dbs.ledger.begin() as conn:
        conn.execute(delete(recipients).where(recipients.c.name == "LinkedIn"))

    assert "has no joint-controller entry" in finding_text(dbs, "LinkedIn")
    # The policy does not list platforms as recipients, so no R32 "missing" finding.
    assert non_baseline(dbs) == []


def test_r32_processor_without_dpa(dbs):
    change_recipient(dbs, "Website provider", dpa_signed_on=None)
    assert non_baseline(dbs) == [("high", "recipients", "Website provider", "R32")]
    assert "data processing agreement" in finding_text(dbs, "Website provider")

    change_recipient(dbs, "Website provider", dpa_signed_on=date(2026, 11, 1))
    assert non_baseline(dbs) == []


@pytest.mark.parametrize("mechanism", ["none", "eea", None])
def test_r32_us_recipient_without_transfer_mechanism(dbs, mechanism):
    change_recipient(dbs, "US payment processor", transfer_mechanism=mechanism)
    assert non_baseline(dbs) == [("high", "recipients", "US payment processor", "R32")]
    assert "outside the EEA" in finding_text(dbs, "US payment processor")

    change_recipient(dbs, "US payment processor", transfer_mechanism="scc", tia_on=date(2026, 1, 5))
    assert non_baseline(dbs) == []


def test_r32_dpf_listing_not_checked_within_90_days(dbs):
    change_recipient(dbs, "US payment processor", dpf_checked_on=date(2026, 8, 30))  # 91 days
    assert non_baseline(dbs) == [("medium", "recipients", "US payment processor", "R32")]
    assert "last checked: 2026-08-30" in finding_text(dbs, "US payment processor")
    change_recipient(dbs, "US payment processor", dpf_checked_on=None)
    assert "last checked: never" in finding_text(dbs, "US payment processor")

    change_recipient(dbs, "US payment processor", dpf_checked_on=date(2026, 8, 31))  # 90 days
    assert non_baseline(dbs) == []


def test_r32_last_review_older_than_12_months(dbs):
    change_recipient(dbs, "Google Analytics", last_review_on=date(2025, 11, 28))
    assert non_baseline(dbs) == [("low", "recipients", "Google Analytics", "R32")]
    change_recipient(dbs, "Google Analytics", last_review_on=None)
    assert non_baseline(dbs) == [("low", "recipients", "Google Analytics", "R32")]

    change_recipient(dbs, "Google Analytics", last_review_on=date(2025, 11, 29))  # 12 months
    assert non_baseline(dbs) == []


def test_r32_recipient_named_in_the_policy_but_missing_from_the_register(dbs):
    with dbs.ledger.begin() as conn:
        conn.execute(delete(recipients).where(recipients.c.name == "Google Analytics"))
    assert non_baseline(dbs) == [("medium", "recipients", "Google Analytics", "R32")]
    assert "missing from the register" in finding_text(dbs, "Google Analytics")

    # The policy's names come from the settings when there are settings.
    facts = PolicyFacts(recipients=("US payment processor", "Facebook Pixel", "Website provider"))
    dbs.settings = Settings(policy_facts=facts)
    assert non_baseline(dbs) == []


def test_r32_recipient_in_the_register_but_not_named_in_the_policy(dbs):
    with dbs.ledger.begin() as conn:
        conn.execute(
            insert(recipients).values(
                name="Newsletter platform",
                legal_name="Example Mail AS",
                role="processor",
                country="NO",
                dpa_signed_on=date(2026, 1, 1),
                transfer_mechanism="eea",
                last_review_on=date(2026, 6, 1),
                named_in_policy=False,
                receives_personal_data=True,
            )
        )
    assert non_baseline(dbs) == [("high", "recipients", "Newsletter platform", "R32")]
    assert "does not name it" in finding_text(dbs, "Newsletter platform")

    change_recipient(dbs, "Newsletter platform", receives_personal_data=False)
    assert non_baseline(dbs) == []
    change_recipient(dbs, "Newsletter platform", receives_personal_data=True)
    dbs.settings = Settings(
        policy_facts=PolicyFacts(recipients=(*PolicyFacts().recipients, "Newsletter platform"))
    )
    assert non_baseline(dbs) == []


@pytest.mark.parametrize("legal_name", [None, "  "])
def test_r32_recipient_without_a_legal_name(dbs, legal_name):
    change_recipient(dbs, "Facebook Pixel", legal_name=legal_name)
    assert non_baseline(dbs) == [("medium", "recipients", "Facebook Pixel", "R32")]
    assert "C-154/21" in finding_text(dbs, "Facebook Pixel")

    change_recipient(dbs, "Facebook Pixel", legal_name="Meta Platforms Ireland Limited")
    assert non_baseline(dbs) == []


def test_r31_scc_without_transfer_impact_assessment(dbs):
    change_recipient(dbs, "US payment processor", transfer_mechanism="scc", tia_on=None)
    assert register.findings(dbs, AS_OF).query("item == 'US payment processor'")[
        ["severity", "rule"]
    ].to_dict("records") == [{"severity": "medium", "rule": "R31"}]

    change_recipient(dbs, "US payment processor", tia_on=date(2026, 2, 1))
    assert finding_text(dbs, "US payment processor") == ""


@pytest.mark.parametrize("name", ["_ga", "_fbp"])
def test_r24_statistics_or_marketing_cookie_without_consent(dbs, name):
    with dbs.ledger.begin() as conn:
        conn.execute(update(cookies).where(cookies.c.name == name).values(consent_required=False))
    provider = {"_ga": "Google", "_fbp": "Meta"}[name]
    assert non_baseline(dbs) == [("high", "cookies", f"{name} ({provider})", "R24")]
    assert "ekomloven §3-15" in finding_text(dbs, f"{name} ({provider})")

    with dbs.ledger.begin() as conn:
        conn.execute(update(cookies).where(cookies.c.name == name).values(consent_required=True))
    assert non_baseline(dbs) == []


def test_findings_are_sorted_by_severity_then_area_and_item(dbs):
    change_recipient(dbs, "Website provider", dpa_signed_on=None, last_review_on=None)
    change_recipient(dbs, "Google Analytics", legal_name=None)
    with dbs.ledger.begin() as conn:
        conn.execute(update(cookies).where(cookies.c.name == "_fbp").values(consent_required=False))

    frame = register.findings(dbs, AS_OF)

    assert list(frame[["severity", "area", "item"]].itertuples(index=False, name=None)) == [
        ("high", "cookies", "_fbp (Meta)"),
        ("high", "recipients", "Website provider"),
        ("medium", "processing", "Facebook"),
        ("medium", "processing", "Instagram"),
        ("medium", "processing", "LinkedIn"),
        ("medium", "processing", "YouTube"),
        ("medium", "recipients", "Google Analytics"),
        ("low", "recipients", "Website provider"),
    ]
    assert register.findings_count(dbs, AS_OF) == {"high": 2, "medium": 5, "low": 1}


def test_register_tables_are_read_in_name_order(dbs):
    with dbs.ledger.begin() as conn:
        conn.execute(
            insert(processing_activities),
            [
                {"name": "Newsletter", "purpose": "News", "legal_basis": "art. 6(1)(a)"},
                {"name": "Accounts", "purpose": "Service", "legal_basis": "art. 6(1)(b)"},
            ],
        )

    activities = register.processing_activities(dbs)
    people = register.recipients(dbs)
    jar = register.cookies(dbs)

    assert list(activities["name"]) == ["Accounts", "Newsletter"]
    assert list(activities["legal_basis"]) == ["art. 6(1)(b)", "art. 6(1)(a)"]
    assert list(people["name"]) == sorted(r["name"] for r in CLEAN_RECIPIENTS)
    assert people.set_index("name").loc["US payment processor", "country"] == "US"
    assert list(jar["name"]) == ["_fbp", "_ga", "session"]
    assert list(jar["consent_required"]) == [True, True, False]


# --- Norwegian alphabetical order on every backend (… Z, Æ, Ø, Å) ---------------------------

NORWEGIAN_ORDER = ["Andersen", "Berg", "Zahl", "Ærø-Hansen", "Ødegård", "Åsheim"]


def test_register_names_sort_in_norwegian_order_on_every_backend(empty_dbs):
    # Inserted so that id order, C collation and MariaDB's collation all differ from it.
    inserted = ["Åsheim", "Zahl", "Ødegård", "Andersen", "Ærø-Hansen", "Berg"]
    with empty_dbs.ledger.begin() as conn:
        conn.execute(
            insert(recipients),
            [{"name": n, "role": "processor", "purpose": "Hosting"} for n in inserted],
        )
        conn.execute(
            insert(processing_activities),
            [{"name": n, "purpose": "Support", "legal_basis": "art. 6(1)(b)"} for n in inserted],
        )
    assert list(register.recipients(empty_dbs)["name"]) == NORWEGIAN_ORDER
    assert list(register.processing_activities(empty_dbs)["name"]) == NORWEGIAN_ORDER


def test_norwegian_collation_reads_aa_as_the_last_letter():
    from data_access import collation

    names = ["Aasen", "Zahl", "Ødegård", "andersen", "Berg"]
    assert collation.sorted_by_name(names, str) == ["andersen", "Berg", "Zahl", "Ødegård", "Aasen"]
