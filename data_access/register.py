"""The register: record of processing, recipients and cookies, and what is wrong with them
(GDPR art. 28, 30, 44-49; ekomloven §3-15; RULES.md R24, R30-R32).

The register lives in the ledger and is small (tens of rows), so findings are computed in
Python over the whole register. What the privacy policy promises (the recipients it names,
the social media pages it mentions) comes from config.toml's [policy_facts].
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import select

from data_access import collation, rules
from data_access import ledger_tables as ledger
from data_access.clock import today_oslo
from data_access.engines import Databases
from data_access.settings import PolicyFacts

# The European Economic Area: the 27 EU member states (ISO 3166-1 alpha-2; Greece is GR)
# and Norway, Iceland, Liechtenstein. Transfers outside it need a mechanism (art. 44-49).
EEA_COUNTRIES = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
        "NO", "IS", "LI",
    }
)  # fmt: skip
# Mechanisms that make a transfer outside the EEA lawful (R31): an adequacy decision, the
# EU-US Data Privacy Framework (an adequacy decision for listed companies), or SCC 2021/914.
TRANSFER_MECHANISMS = ("adequacy", "dpf", "scc")
CONSENT_CATEGORIES = ("statistics", "marketing")
SEVERITIES = ("high", "medium", "low")
FINDING_COLUMNS = ["severity", "area", "item", "finding", "rule"]


def processing_activities(dbs: Databases) -> pd.DataFrame:
    """The record of processing activities (art. 30; RULES.md R30), by name.

    Columns: id, name, purpose, legal_basis, data_subjects, data_categories, recipients,
    third_country_transfers, retention_rule, security_measures, updated_on (date).
    """
    table = ledger.processing_activities
    return _frame(_rows(dbs, table, [table.c.name, table.c.id]), table)


def recipients(dbs: Databases) -> pd.DataFrame:
    """Recipients and processors (art. 28, 44-49; RULES.md R31), by name.

    Columns: id, name, legal_name, role ('processor' | 'joint_controller' |
    'independent_controller'), purpose, data_categories, country (ISO alpha-2),
    dpa_signed_on, transfer_mechanism ('eea' | 'adequacy' | 'dpf' | 'scc' | 'none'),
    dpf_checked_on, tia_on, last_review_on (dates), named_in_policy,
    receives_personal_data, notes.
    """
    return _frame(_recipient_rows(dbs), ledger.recipients)


def cookies(dbs: Databases) -> pd.DataFrame:
    """The cookie register (ekomloven §3-15; RULES.md R24), by name, provider and id.

    Columns: id, name, provider, party ('first' | 'third'), category ('strictly_necessary' |
    'statistics' | 'marketing'), lifetime_days, lifetime, consent_required.
    """
    return _frame(_cookie_rows(dbs), ledger.cookies)


def findings(dbs: Databases, as_of: date | None = None) -> pd.DataFrame:
    """What the register says is wrong on the Oslo date `as_of`, most severe first.

    Columns: severity ('high' | 'medium' | 'low'), area ('recipients' | 'cookies' |
    'processing'), item (the recipient, cookie or platform), finding (what to fix), rule
    (RULES.md id). Sorted by severity, area, item, finding. Checks: R32 (processor without
    DPA; non-EEA recipient without transfer mechanism; DPF listing not checked within
    policy.dpf_check_days days; last review older than policy.recipient_review_months
    months; recipients the policy names but the register lacks, and the reverse; recipient
    without a legal name), R31 (SCC without a transfer impact assessment; social media
    pages whose statistics the policy says are "not available to us" although the page
    owner is joint controller with the platform, CJEU C-210/16), R24 (statistics or
    marketing cookie that does not require consent).
    """
    as_of = as_of or today_oslo()
    facts = _policy_facts(dbs)
    register = _recipient_rows(dbs)
    rows = [
        *_recipient_findings(register, as_of, dbs.policy),
        *_policy_name_findings(register, facts),
        *_social_media_findings(register, facts),
        *_cookie_findings(_cookie_rows(dbs)),
    ]
    frame = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    frame["_rank"] = frame["severity"].map(SEVERITIES.index)
    frame = frame.sort_values(["_rank", "area", "item", "finding"], kind="stable")
    return frame.drop(columns="_rank").reset_index(drop=True)


def policy_text(dbs: Databases) -> str | None:
    """The privacy policy's text from the file config.toml's `policy_facts.policy_text_path`
    names (relative to config.toml), for the Register page to show beside the register it
    is checked against (R31); None when the setting is empty or there are no settings.
    Raises OSError (e.g. FileNotFoundError) when the file cannot be read, UnicodeDecodeError
    when it is not UTF-8."""
    settings = dbs.settings
    if settings is None or not settings.policy_facts.policy_text_path:
        return None
    path = settings.base_dir / settings.policy_facts.policy_text_path
    return path.read_text(encoding="utf-8")


def policy_facts(dbs: Databases) -> PolicyFacts:
    """What the privacy policy promises (config.toml [policy_facts]; defaults without settings)."""
    return _policy_facts(dbs)


def policy_name_findings(dbs: Databases) -> list[dict[str, str]]:
    """R32 findings about names: recipients the policy names that the register lacks, and
    recipients receiving personal data that the policy does not name (finding dicts with
    severity, area, item, finding, rule)."""
    return _policy_name_findings(_recipient_rows(dbs), _policy_facts(dbs))


def social_media_findings(dbs: Databases) -> list[dict[str, str]]:
    """R31 findings: one per social media platform of the policy, where the company is
    joint controller for page statistics although the policy says the data "is not
    available to us" (CJEU C-210/16)."""
    return _social_media_findings(_recipient_rows(dbs), _policy_facts(dbs))


def findings_count(dbs: Databases, as_of: date | None = None) -> dict[str, int]:
    """Number of register findings per severity: {'high': n, 'medium': n, 'low': n}."""
    counts = findings(dbs, as_of)["severity"].value_counts()
    return {severity: int(counts.get(severity, 0)) for severity in SEVERITIES}


# --- helpers ------------------------------------------------------------------------------


def _rows(dbs: Databases, table, order_by) -> list[dict[str, Any]]:
    """A register table's rows as plain dicts (None stays None, unlike in a DataFrame), in
    Norwegian order of the text columns of `order_by`, then the rest (collation): the row
    cap takes the first rows by id, the same set on every backend."""
    query = select(table).order_by(table.c.id).limit(dbs.policy.max_rows)
    with dbs.ledger.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    keys = [c.name for c in order_by]
    return sorted(rows, key=lambda row: tuple(_order_value(row[k]) for k in keys))


def _order_value(value: Any) -> Any:
    """A text (None as "") as its Norwegian sort key, anything else (an id) as it is."""
    return collation.name_key(value) if value is None or isinstance(value, str) else value


def _recipient_rows(dbs: Databases) -> list[dict[str, Any]]:
    table = ledger.recipients
    return _rows(dbs, table, [table.c.name, table.c.id])


def _cookie_rows(dbs: Databases) -> list[dict[str, Any]]:
    table = ledger.cookies
    return _rows(dbs, table, [table.c.name, table.c.provider, table.c.id])


def _frame(rows: list[dict[str, Any]], table) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[c.name for c in table.columns])


def _policy_facts(dbs: Databases) -> PolicyFacts:
    return dbs.settings.policy_facts if dbs.settings is not None else PolicyFacts()


def _norm(name: Any) -> str:
    return " ".join(str(name or "").split()).casefold()


def _finding(severity: str, area: str, item: str, finding: str, rule: str) -> dict[str, str]:
    return {"severity": severity, "area": area, "item": item, "finding": finding, "rule": rule}


def _recipient_findings(register: list[dict], as_of: date, policy) -> list[dict[str, str]]:
    """R32 (and R31's impact assessment) for each recipient that receives personal data."""
    return [
        _finding(severity, "recipients", r["name"], finding, rule)
        for r in register
        if r["receives_personal_data"]
        for severity, finding, rule in _recipient_problems(r, as_of, policy)
    ]


def _recipient_problems(r: dict, as_of: date, policy) -> list[tuple[str, str, str]]:
    """(severity, finding, rule) for one register row."""
    problems = []
    if r["role"] == "processor" and r["dpa_signed_on"] is None:
        problems.append(
            ("high", "Processor without a signed data processing agreement (art. 28(3)).", "R32")
        )
    country = (r["country"] or "").strip().upper()
    mechanism = (r["transfer_mechanism"] or "none").strip().lower()
    outside_eea = bool(country) and country not in EEA_COUNTRIES
    if not country:
        problems.append(
            ("medium", "No country recorded: the transfer cannot be assessed (art. 44).", "R32")
        )
    elif outside_eea and mechanism not in TRANSFER_MECHANISMS:
        problems.append(
            (
                "high",
                f"Recipient in {country}, outside the EEA, without a transfer mechanism "
                "(adequacy, Data Privacy Framework or SCC; art. 44-46).",
                "R32",
            )
        )
    checked = r["dpf_checked_on"]
    if mechanism == "dpf" and (checked is None or (as_of - checked).days > policy.dpf_check_days):
        problems.append(
            (
                "medium",
                f"Data Privacy Framework listing not checked in {policy.dpf_check_days} days "
                f"(last checked: {checked.isoformat() if checked else 'never'}).",
                "R32",
            )
        )
    if outside_eea and mechanism == "scc" and r["tia_on"] is None:
        problems.append(("medium", "SCC 2021/914 without a transfer impact assessment.", "R31"))
    reviewed = r["last_review_on"]
    if reviewed is None or reviewed < rules.add_months(as_of, -policy.recipient_review_months):
        problems.append(
            (
                "low",
                f"Not reviewed in {policy.recipient_review_months} months "
                f"(last review: {reviewed.isoformat() if reviewed else 'never'}).",
                "R32",
            )
        )
    if not (r["legal_name"] or "").strip():
        problems.append(
            (
                "medium",
                "No legal name: the policy must name the recipient, not only its category "
                "(CJEU C-154/21).",
                "R32",
            )
        )
    return problems


def _platform_entry(name: Any, facts: PolicyFacts) -> str | None:
    """The social media platform a register entry stands for ('Facebook' for 'Facebook' or
    'Facebook page'), or None. A recipient the policy names ('Facebook Pixel') is not one."""
    key = _norm(name)
    if key in {_norm(n) for n in facts.recipients}:
        return None
    for platform in facts.social_media:
        if key == _norm(platform) or key.startswith(_norm(platform) + " "):
            return platform
    return None


def _policy_name_findings(register: list[dict], facts: PolicyFacts) -> list[dict[str, str]]:
    """R32: recipients the policy names that the register lacks, and the reverse.

    Platforms of the policy's social media section are covered by the R31 check instead.
    """
    found = []
    in_register = {_norm(r["name"]) for r in register}
    named = {_norm(n) for n in facts.recipients}
    for name in facts.recipients:
        if _norm(name) not in in_register:
            found.append(
                _finding(
                    "medium",
                    "recipients",
                    name,
                    "Named as a recipient in the privacy policy but missing from the register.",
                    "R32",
                )
            )
    for r in register:
        unnamed = _norm(r["name"]) not in named and _platform_entry(r["name"], facts) is None
        if r["receives_personal_data"] and unnamed:
            found.append(
                _finding(
                    "high",
                    "recipients",
                    r["name"],
                    "Receives personal data but the privacy policy does not name it (art. 13(1)(e)).",
                    "R32",
                )
            )
    return found


def _social_media_findings(register: list[dict], facts: PolicyFacts) -> list[dict[str, str]]:
    """R31: one finding per social media platform the policy lists.

    The policy says personal data from the pages "is not available to us", yet the page
    owner is joint controller for page statistics with the platform (CJEU C-210/16), which
    the policy must describe (art. 26(2)).
    """
    found = []
    joint = {_platform_entry(r["name"], facts) for r in register if r["role"] == "joint_controller"}
    for platform in facts.social_media:
        recorded = platform in joint
        where = (
            "The register records the joint controllership"
            if recorded
            else "The register has no joint-controller entry for it"
        )
        found.append(
            _finding(
                "medium",
                "processing",
                platform,
                "Joint controller for page statistics with the platform (CJEU C-210/16), but "
                f'the privacy policy says such data "is not available to us". {where}; '
                "the policy must describe the arrangement (art. 26(2)).",
                "R31",
            )
        )
    return found


def _cookie_findings(register: list[dict]) -> list[dict[str, str]]:
    """R24: statistics and marketing cookies need prior consent (ekomloven §3-15)."""
    return [
        _finding(
            "high",
            "cookies",
            f"{c['name']} ({c['provider']})",
            f"A {c['category']} cookie set without prior consent (ekomloven §3-15).",
            "R24",
        )
        for c in register
        if c["category"] in CONSENT_CATEGORIES and not c["consent_required"]
    ]
