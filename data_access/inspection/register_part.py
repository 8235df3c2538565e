"""Pack sections from the register: the record of processing with the recipients and
processors and the register's current findings (GDPR art. 28, 30, 44-49; RULES.md R30-R32),
and the cookie register (ekomloven §3-15; R24). Labels and values come from `ropa`, the
record of processing the Register page prints, so both say the same in the same words."""

from __future__ import annotations

import pandas as pd

from data_access import register, ropa
from data_access.documents import Section
from data_access.inspection.parts import Context, Part, document, shown, text

RECIPIENT_COLUMNS = [
    "name",
    "legal_name",
    "role",
    "country",
    "dpa_signed_on",
    "transfer_mechanism",
    "dpf_checked_on",
    "tia_on",
    "last_review_on",
]
ACTIVITY_FIELDS = [
    "purpose",
    "legal_basis",
    "data_subjects",
    "data_categories",
    "recipients",
    "third_country_transfers",
    "retention_rule",
    "security_measures",
    "updated_on",
]
COOKIE_COLUMNS = ["name", "provider", "party", "category", "lifetime", "consent_required"]


def _valued(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Coded values (roles, mechanisms, categories, booleans) in words of `lang`."""
    words = ropa.VALUES[lang]
    yes, no = ropa.LABELS[lang]["yes"], ropa.LABELS[lang]["no"]
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == bool:
            out[column] = out[column].map({True: yes, False: no})
        else:
            out[column] = out[column].map(lambda v: words.get(v, v) if isinstance(v, str) else v)
    return out


def record_of_processing(ctx: Context) -> Part:
    """R30 activities, R31 recipients (role, DPA date, transfer mechanism, last DPF check),
    R32 findings on `ctx.as_of`. Figures: activities, recipients, findings (counts)."""
    activities = register.processing_activities(ctx.dbs)
    recipients = register.recipients(ctx.dbs)[RECIPIENT_COLUMNS]
    findings = register.findings(ctx.dbs, ctx.as_of)
    docs = {}
    for lang in ctx.languages:
        labels = ropa.LABELS[lang]
        sections = [
            Section(
                heading=str(row["name"]),
                table=pd.DataFrame(
                    {
                        text(lang, "Felt", "Field"): [labels[f] for f in ACTIVITY_FIELDS],
                        text(lang, "Innhold", "Value"): [
                            "" if pd.isna(row[f]) else str(row[f]) for f in ACTIVITY_FIELDS
                        ],
                    }
                ),
            )
            for row in activities.to_dict("records")
        ] or [Section(heading=labels["activities"], paragraphs=[labels["empty"]])]
        sections.append(
            Section(
                heading=labels["recipient_table"],
                paragraphs=[
                    text(
                        lang,
                        "Rolle, databehandleravtale (dato), overføringsgrunnlag og når "
                        "oppføringen i Data Privacy Framework sist ble sjekket (R31).",
                        "Role, data processing agreement (date), transfer mechanism and when "
                        "the Data Privacy Framework listing was last checked (R31).",
                    )
                ],
                table=shown(_valued(recipients, lang), lang),
            )
        )
        sections.append(
            Section(
                heading=text(lang, "Funn i registeret", "Register findings"),
                paragraphs=[
                    text(
                        lang,
                        f"{len(findings)} funn per {ctx.as_of.isoformat()} (R32).",
                        f"{len(findings)} findings as of {ctx.as_of.isoformat()} (R32).",
                    )
                ],
                table=shown(findings, lang) if not findings.empty else None,
            )
        )
        docs[lang] = document(ctx, lang, labels["title"], sections, subtitle=labels["subtitle"])
    return Part(
        key="01-record-of-processing",
        titles={lang: ropa.LABELS[lang]["title"] for lang in ctx.languages},
        summaries={
            lang: text(
                lang,
                "Behandlingsaktivitetene (art. 30), mottakere og databehandlere med avtaler og "
                "overføringsgrunnlag (art. 28, 44–49) og registerets funn.",
                "The processing activities (art. 30), recipients and processors with their "
                "agreements and transfer mechanisms (art. 28, 44–49), and the register's findings.",
            )
            for lang in ctx.languages
        },
        documents=docs,
        tables={
            "processing-activities": activities,
            "recipients": recipients,
            "register-findings": findings,
        },
        figures={
            "activities": len(activities),
            "recipients": len(recipients),
            "findings": len(findings),
        },
    )


def cookie_register(ctx: Context) -> Part:
    """R24: every cookie with provider, party, category, lifetime and whether it needs
    consent. Figures: cookies, consent_required (counts)."""
    cookies = register.cookies(ctx.dbs)[COOKIE_COLUMNS]
    needing = int(cookies["consent_required"].astype(bool).sum()) if len(cookies) else 0
    docs = {}
    for lang in ctx.languages:
        labels = ropa.LABELS[lang]
        summary = text(
            lang,
            f"{len(cookies)} informasjonskapsler; {needing} krever forhåndssamtykke "
            "(ekomloven § 3-15).",
            f"{len(cookies)} cookies; {needing} require prior consent (ekomloven §3-15).",
        )
        sections = [
            Section(
                heading=labels["cookies"],
                paragraphs=[summary] if len(cookies) else [labels["empty"]],
                table=shown(_valued(cookies, lang), lang) if len(cookies) else None,
            )
        ]
        docs[lang] = document(ctx, lang, labels["cookies"], sections)
    return Part(
        key="02-cookie-register",
        titles={lang: ropa.LABELS[lang]["cookies"] for lang in ctx.languages},
        summaries={
            lang: text(
                lang,
                "Informasjonskapsler med leverandør, formål, levetid og om de krever samtykke.",
                "Cookies with provider, purpose, lifetime and whether they require consent.",
            )
            for lang in ctx.languages
        },
        documents=docs,
        tables={"cookies": cookies},
        figures={"cookies": len(cookies), "consent_required": needing},
    )
