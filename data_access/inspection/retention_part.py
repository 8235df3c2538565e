"""Pack sections on retention (GDPR art. 5(1)(e), 5(2), 17; RULES.md R12-R18): the
enforcement runs of the period with their counts, dates and actors, the legal holds in force
during the period with their reasons and review dates, and the erasure and deletion
receipts of the period with the erasure's residue scans.

Everything comes from the ledger: the jobs that ran each deletion, purge, anonymisation and
erasure (one row per run), the audit entries of the retention rules, the holds and the
erasure receipts. People appear only as keyed hashes (R18); a hold on an e-mail is shown by
the hash of that e-mail.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from data_access import audit, holds, identifiers
from data_access import ledger_tables as lt
from data_access import tables as t
from data_access.clock import day_end_utc, day_start_utc
from data_access.documents import Section
from data_access.emails import email_condition, normalised_email, same_email
from data_access.inspection.parts import Context, Part, document, empty_note, shown, text
from data_access.inspection.requests_part import without_subject
from data_access.retention import deletion, purges

# The jobs that enforce a retention rule, and the rule each enforces.
ENFORCEMENT_KINDS = {deletion.KIND: "R13/R14", purges.KINDS[0]: "R16", purges.KINDS[1]: "R15"}
RETENTION_RULES = ("R13", "R14", "R15", "R16", "R17")
_STREAM = 10_000  # step rows read at a time
RUN_COLUMNS = ["job_id", "kind", "rule", "as_of", "actor", "status", "targets", "records"]
RUN_SUMMARY_COLUMNS = ["kind", "rule", "runs", "records", "first_run_on", "last_run_on", "actors"]
AUDIT_SUMMARY_COLUMNS = ["rule", "action", "entries", "first_at", "last_at", "actors"]
HOLD_COLUMNS = ["hold_id", "scope", "target", "reason", "case_ref", "owner", "placed_on",
                "review_on", "released_on", "past_review"]  # fmt: skip
RECEIPT_COLUMNS = ["receipt_id", "subject_ref", "request_id", "job_id", "as_of", "actor",
                   "status", "erased", "kept", "residue", "allowed"]  # fmt: skip


def _jobs(ctx: Context, kinds) -> list[dict[str, Any]]:
    query = (
        select(lt.jobs)
        .where(lt.jobs.c.kind.in_(list(kinds)), lt.jobs.c.as_of.between(ctx.period_start, ctx.period_end))
        .order_by(lt.jobs.c.as_of, lt.jobs.c.id)
    )  # fmt: skip
    with ctx.dbs.ledger.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def _done_steps(ctx: Context, job_ids: list[int]) -> dict[int, tuple[int, int]]:
    """Per job: (distinct targets done, rows changed by its done steps)."""
    if not job_ids:
        return {}
    query = (
        select(lt.job_steps.c.job_id, lt.job_steps.c.target, lt.job_steps.c.counts)
        .where(lt.job_steps.c.job_id.in_(job_ids), lt.job_steps.c.status == "done")
        .order_by(lt.job_steps.c.job_id, lt.job_steps.c.seq)
    )
    targets: dict[int, set[str]] = {}
    records: dict[int, int] = {}
    with ctx.dbs.ledger.connect() as conn:
        streamed = conn.execution_options(yield_per=_STREAM).execute(query)
        for job_id, target, counts in streamed:
            targets.setdefault(job_id, set()).add(target)
            rows = (json.loads(counts) if counts else {}).get("rows") or {}
            records[job_id] = records.get(job_id, 0) + sum(int(v) for v in rows.values())
    return {j: (len(targets.get(j, ())), records.get(j, 0)) for j in job_ids}


def enforcement_runs(ctx: Context) -> pd.DataFrame:
    """Every retention job (account deletion, support purge, invoice anonymisation) whose
    effective date is in the period. Columns: job_id, kind, rule, as_of (Oslo date), actor
    (who ran it last, else who planned it), status, targets (records done), records (rows
    deleted or anonymised)."""
    found = _jobs(ctx, ENFORCEMENT_KINDS)
    done = _done_steps(ctx, [j["id"] for j in found])
    rows = [[j["id"], j["kind"], ENFORCEMENT_KINDS[j["kind"]], j["as_of"],
             j["claimed_by"] or j["actor"], j["status"], *done[j["id"]]] for j in found]  # fmt: skip
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def run_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per kind of run: runs, records, first_run_on, last_run_on, actors (comma-separated)."""
    rows = []
    for kind, rule in ENFORCEMENT_KINDS.items():
        mine = runs[runs["kind"] == kind]
        rows.append([kind, rule, len(mine), int(mine["records"].sum()),
                     mine["as_of"].min() if len(mine) else None,
                     mine["as_of"].max() if len(mine) else None,
                     ", ".join(sorted(set(mine["actor"])))])  # fmt: skip
    return pd.DataFrame(rows, columns=RUN_SUMMARY_COLUMNS)


def retention_audit(ctx: Context) -> pd.DataFrame:
    """Audit entries of the retention rules (R13-R17) written in the period (UTC bounds of
    the Oslo days), per rule and action, counted in SQL (one entry per deleted record adds
    up). Columns: rule, action, entries, first_at, last_at (UTC), actors (comma-separated)."""
    log = lt.audit_log.c
    query = (
        select(log.rule, log.action, log.actor, func.count(), func.min(log.occurred_at),
               func.max(log.occurred_at))
        .where(
            log.rule.in_(RETENTION_RULES),
            log.occurred_at >= day_start_utc(ctx.period_start),
            log.occurred_at < day_end_utc(ctx.period_end),
        )
        .group_by(log.rule, log.action, log.actor)
        .order_by(log.rule, log.action, log.actor)
    )  # fmt: skip
    groups: dict[tuple[str, str], list] = {}
    with ctx.dbs.ledger.connect() as conn:
        for rule, action, actor, n, first, last in conn.execute(query):
            g = groups.setdefault((rule, action), [0, first, last, []])
            g[0] += int(n)
            g[1], g[2] = min(g[1], first), max(g[2], last)
            g[3].append(actor)
    rows = [[rule, action, n, first, last, ", ".join(actors)]
            for (rule, action), (n, first, last, actors) in groups.items()]  # fmt: skip
    return pd.DataFrame(rows, columns=AUDIT_SUMMARY_COLUMNS)


def holds_in_period(ctx: Context) -> pd.DataFrame:
    """Legal holds in force at any time in the period (R17), from `holds.all_holds` (the
    Legal holds page's list) on `ctx.as_of`. Columns: hold_id, scope, target ('account:<id>',
    'contact:<id>' or the keyed hash of the held e-mail), reason (the e-mail redacted),
    case_ref, owner, placed_on, review_on, released_on (Oslo dates), past_review (bool)."""
    every = holds.all_holds(ctx.dbs, ctx.as_of)
    rows = []
    for h in every.to_dict("records"):
        released = h["released_on"]
        if h["placed_on"] > ctx.period_end or (
            released is not None and released < ctx.period_start
        ):
            continue
        target = _hold_target(ctx, h)
        reason = without_subject(h["reason"], *_held_people(ctx, h))
        rows.append([h["id"], h["scope"], target, reason,
                     h["case_ref"], h["owner"], h["placed_on"], h["review_on"], released,
                     bool(h["past_review"])])  # fmt: skip
    return pd.DataFrame(rows, columns=HOLD_COLUMNS)


def _held_people(ctx: Context, hold: dict[str, Any]) -> list[str]:
    """The e-mails, names and phones of whom a hold keeps (its e-mail, the account's owner,
    the contact), so that a reason naming them can be redacted (R18)."""
    emails, found = {hold["email"]} - {None}, set()
    if hold["scope"] == "account" and hold["account_id"] is not None:
        a = t.accounts.c
        query = select(a.email, a.full_name, a.contact_person).where(a.id == hold["account_id"])
        with ctx.dbs.users.connect() as conn:
            for row in conn.execute(query):
                emails.add(row.email)
                found |= {row.full_name, row.contact_person}
    if hold["scope"] == "contact" and hold["contact_id"] is not None:
        c = t.contacts.c
        query = select(c.email, c.full_name, c.phone).where(c.id == hold["contact_id"])
        with ctx.dbs.support.connect() as conn:
            for row in conn.execute(query):
                emails.add(row.email)
                found |= {row.full_name, row.phone}
    for email in emails - {None}:
        norm = normalised_email(email)
        a = t.accounts.c
        condition = email_condition(a.email, norm, ctx.dbs.users.dialect.name)
        with ctx.dbs.users.connect() as conn:
            rows = conn.execute(select(a.id, a.email).where(condition).order_by(a.id)).all()
        owned = [i for i, stored in rows if same_email(stored, norm)]
        known = identifiers.person_identifiers(ctx.dbs, norm, owned)
        found |= {email, *known.names, *known.phones}
    return sorted(str(v) for v in found if v)


def _hold_target(ctx: Context, hold: dict[str, Any]) -> str:
    if hold["scope"] == "account":
        return f"account:{hold['account_id']}"
    if hold["scope"] == "contact":
        return f"contact:{hold['contact_id']}"
    return audit.keyed_hash(ctx.dbs, hold["email"]) if hold["email"] else "—"


def _receipts_in_period(ctx: Context) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(ledger row, parsed receipt) of each erasure receipt dated in the period, by id."""
    query = (
        select(lt.erasure_receipts)
        .where(lt.erasure_receipts.c.as_of.between(ctx.period_start, ctx.period_end))
        .order_by(lt.erasure_receipts.c.id)
    )
    with ctx.dbs.ledger.connect() as conn:
        found = [dict(r) for r in conn.execute(query).mappings()]
    return [(r, json.loads(r["receipt"] or "{}")) for r in found]


def erasure_receipts(ctx: Context) -> pd.DataFrame:
    """Erasure receipts (R12, R18) dated (`as_of`, Oslo) in the period, pseudonymous.
    Columns: receipt_id, subject_ref (keyed hash), request_id, job_id, as_of, actor, status,
    erased (rows), kept (record sets kept), residue (rows with residue the scan found; None
    before the scan ran), allowed (columns whose hits R18 allows). Details: `residue_scans`."""
    rows = []
    for r, body in _receipts_in_period(ctx):
        scan = body.get("residue") or {}
        rows.append([r["id"], r["subject_ref"], r["request_id"], r["job_id"], r["as_of"], r["actor"],
                     body.get("status", ""), sum(int(v) for v in (body.get("erased") or {}).values()),
                     len(body.get("kept") or []), scan.get("residue_rows") if scan else None,
                     len(scan.get("allowed") or []) if scan else None])  # fmt: skip
    return pd.DataFrame(rows, columns=RECEIPT_COLUMNS)


def residue_scans(ctx: Context) -> pd.DataFrame:
    """Each receipt's residue scan, one row per column with hits. Columns: receipt_id,
    where ("store.table.column"), rows, found (kinds: email/phone/name), why (the R18
    reason it may remain; empty for residue). The scan names no needle (R18)."""
    rows = []
    for r, body in _receipts_in_period(ctx):
        scan = body.get("residue") or {}
        for kind in ("residue", "allowed"):
            for hit in scan.get(kind) or []:
                rows.append([r["id"], hit["where"], hit["rows"], ", ".join(hit["found"]),
                             hit.get("why", "")])  # fmt: skip
    return pd.DataFrame(rows, columns=["receipt_id", "where", "rows", "found", "why"])


def retention_evidence(ctx: Context) -> Part:
    """The section: runs per kind and each run, the retention audit entries, the holds."""
    runs = enforcement_runs(ctx)
    summary, logged, held = run_summary(runs), retention_audit(ctx), holds_in_period(ctx)
    figures = {"runs": len(runs), "records": int(runs["records"].sum()), "holds": len(held),
               "holds_past_review": int(held["past_review"].sum()) if len(held) else 0}  # fmt: skip
    docs = {}
    for lang in ctx.languages:
        sections = [
            Section(
                heading=text(lang, "Sletterutiner som er kjørt", "Enforcement runs"),
                paragraphs=[
                    text(
                        lang,
                        f"{len(runs)} kjøringer i perioden endret {figures['records']:,} poster.",
                        f"{len(runs)} runs in the period changed {figures['records']:,} records.",
                    )
                ],  # fmt: skip
                table=shown(summary, lang),
            ),
            Section(
                heading=text(lang, "Hver kjøring", "Each run"),
                paragraphs=[] if len(runs) else [empty_note(lang)],
                table=shown(runs, lang) if len(runs) else None,
            ),
            Section(
                heading=text(
                    lang, "Revisjonslogg for sletteregler", "Audit entries of the retention rules"
                ),
                paragraphs=[] if len(logged) else [empty_note(lang)],
                table=shown(logged, lang) if len(logged) else None,
            ),  # fmt: skip
            Section(
                heading=text(lang, "Sletteunntak (juridisk hold)", "Legal holds"),
                paragraphs=[
                    text(
                        lang,
                        f"{len(held)} hold i kraft i perioden; {figures['holds_past_review']} "
                        "har passert gjennomgangsdatoen (R17).",
                        f"{len(held)} holds in force during the period; "
                        f"{figures['holds_past_review']} past their review date (R17).",
                    )
                ],  # fmt: skip
                table=shown(held, lang) if len(held) else None,
            ),
        ]
        docs[lang] = document(ctx, lang, _title(lang), sections)
    return Part(
        key="04-retention-evidence",
        titles={lang: _title(lang) for lang in ctx.languages},
        summaries={
            lang: text(
                lang,
                "Sletting i praksis: kjøringer med antall, datoer og hvem, revisjonslogg og "
                "juridiske hold med begrunnelse og gjennomgangsdato.",
                "Retention in practice: runs with counts, dates and actors, the audit entries, and "
                "legal holds with their reasons and review dates.",
            )
            for lang in ctx.languages
        },  # fmt: skip
        documents=docs,
        tables={
            "enforcement-runs-by-kind": summary,
            "enforcement-runs": runs,
            "retention-audit-entries": logged,
            "legal-holds": held,
        },  # fmt: skip
        figures=figures,
    )


def _title(lang: str) -> str:
    return text(lang, "Dokumentasjon av sletting", "Retention evidence")


def receipts(ctx: Context) -> Part:
    """The section: erasure receipts with residue scans, and the deletion runs' receipts."""
    erased = erasure_receipts(ctx)
    scans = residue_scans(ctx)
    runs = enforcement_runs(ctx)
    figures = {"erasure_receipts": len(erased), "deletion_receipts": len(runs),
               "residue_rows": int(erased["residue"].fillna(0).sum()) if len(erased) else 0}  # fmt: skip
    docs = {}
    for lang in ctx.languages:
        title = _receipts_title(lang)
        sections = [
            Section(
                heading=text(
                    lang, "Sletting etter krav (art. 17)", "Erasures on request (art. 17)"
                ),
                paragraphs=[
                    text(
                        lang,
                        "Personen vises bare som en nøkkelbasert hash av e-postadressen (R18). "
                        "«Rester» er rader søket etter e-post, telefon og navn fant etter slettingen.",
                        'The person appears only as a keyed hash of the e-mail (R18). "Residue" is '
                        "the rows the scan for e-mail, phone and name found after the erasure.",
                    )
                ]
                + ([] if len(erased) else [empty_note(lang)]),
                table=shown(erased, lang) if len(erased) else None,
            ),  # fmt: skip
            Section(
                heading=text(lang, "Restsøk", "Residue scans"),
                paragraphs=[] if len(scans) else [text(lang, "Ingen treff.", "No hits.")],
                table=shown(scans, lang) if len(scans) else None,
            ),
            Section(
                heading=text(lang, "Kvitteringer for sletterutiner", "Receipts of deletion runs"),
                paragraphs=[
                    text(
                        lang,
                        "Hver kjøring er en jobb i loggen; hvert steg har sin revisjonsoppføring. "
                        "Restsøk kjøres ved sletting etter krav, ikke ved rutinemessig sletting.",
                        "Each run is a job in the ledger; each step has its audit entry. Residue "
                        "scans run for erasures on request, not for routine deletion.",
                    )
                ]
                + ([] if len(runs) else [empty_note(lang)]),
                table=shown(runs, lang) if len(runs) else None,
            ),  # fmt: skip
        ]
        docs[lang] = document(ctx, lang, title, sections)
    return Part(
        key="05-erasure-and-deletion-receipts",
        titles={lang: _receipts_title(lang) for lang in ctx.languages},
        summaries={
            lang: text(
                lang,
                "Kvitteringer for sletting i perioden (pseudonyme), med restsøkene.",
                "Erasure and deletion receipts of the period (pseudonymous), with their residue scans.",
            )
            for lang in ctx.languages
        },  # fmt: skip
        documents=docs,
        tables={"erasure-receipts": erased, "residue-scans": scans, "deletion-receipts": runs},
        figures=figures,
    )


def _receipts_title(lang: str) -> str:
    return text(lang, "Kvitteringer for sletting", "Erasure and deletion receipts")
