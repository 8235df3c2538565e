"""The ledger: the dashboard's own database (DESIGN.md "Four databases").

Versioned with Alembic (`data_access/migrations`); these Table objects are what the code
queries, and `tests/test_migrations.py` checks that the migrations build exactly them.
Personal data is held here only while needed (an outbox message, a hold's scope); audit
entries and receipts carry `subject_ref` = keyed hash of the e-mail (RULES.md R18).
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from data_access.tables import EMAIL, NAME

ledger_metadata = MetaData()
REF = 64  # hex HMAC-SHA256

audit_log = Table(
    "audit_log",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("occurred_at", DateTime, nullable=False),  # UTC
    Column("actor", String(EMAIL), nullable=False),
    Column("action", String(60), nullable=False),
    Column("rule", String(20)),  # 'R14', 'R16', ...
    Column("store", String(20)),  # users | consent | support | ledger
    Column("subject_ref", String(REF)),  # keyed hash, never an e-mail
    Column("target", String(200)),  # e.g. 'account:42', 'request:7'
    Column("counts", Text),  # canonical JSON {"table": rows}
    Column("details", Text),  # canonical JSON, no personal data
    Column("prev_hash", CHAR(64), nullable=False),
    Column("hash", CHAR(64), nullable=False),
)

# One row (id = 1): updating it first serialises appends on every backend, so two actions
# at once cannot fork the chain.
audit_head = Table(
    "audit_head",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("hash", CHAR(64), nullable=False),
    Column("entries", Integer, nullable=False),
)

notices = Table(
    "notices",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, nullable=False),
    Column("sent_on", Date, nullable=False),  # effective (as_of) date, Oslo
    Column("created_at", DateTime, nullable=False),  # UTC
    Column("actor", String(EMAIL), nullable=False),
    Column("last_activity_on", Date, nullable=False),  # what the notice was based on
    Column("deletable_on", Date, nullable=False),
    Column("outbox_id", Integer),
    Index("ix_notices_account_id", "account_id", "sent_on"),
)

outbox = Table(
    "outbox",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Column("kind", String(40), nullable=False),  # 'inactivity_notice', ...
    Column("to_email", String(EMAIL), nullable=False),
    Column("subject_ref", String(REF), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(12), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("sent_at", DateTime),
    Index("ix_outbox_status", "status", "id"),
)

jobs = Table(
    "jobs",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(40), nullable=False),  # account_deletion | support_purge | ...
    Column("idempotency_key", String(100), unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("actor", String(EMAIL), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("status", String(12), nullable=False),  # pending | running | partial | done
    Column("params", Text),  # canonical JSON
    Column("error", Text),
    Column("finished_at", DateTime),
    # The claim is a lease (jobs.run_job): whoever runs the job renews it per batch; a
    # 'running' job whose lease expired was interrupted (its process is gone).
    Column("claimed_by", String(EMAIL)),  # the actor running (or last running) the job
    Column("claimed_at", DateTime),  # UTC
    Column("lease_expires_at", DateTime),  # UTC; None when nobody holds the job
    Column("claim_token", String(32)),  # which claim holds it (two tabs of one actor differ)
)

job_steps = Table(
    "job_steps",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("target", String(200), nullable=False),  # 'account:42'
    Column("store", String(20), nullable=False),
    Column("step", String(60), nullable=False),
    Column("status", String(12), nullable=False),  # pending | started | done | failed | ...
    Column("counts", Text),
    Column("error", Text),
    Column("done_at", DateTime),
    UniqueConstraint("job_id", "seq", name="uq_job_steps_job_seq"),
    Index("ix_job_steps_target", "target", "step"),  # who did a step (jobs.done_by)
)

legal_holds = Table(
    "legal_holds",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("scope", String(10), nullable=False),  # email | account | contact
    Column("email", String(EMAIL)),  # held while the hold is needed (R18)
    Column("subject_ref", String(REF)),
    Column("account_id", Integer),
    Column("contact_id", Integer),
    Column("reason", Text, nullable=False),
    Column("case_ref", String(100), nullable=False),
    Column("owner", String(EMAIL), nullable=False),
    Column("placed_by", String(EMAIL), nullable=False),
    Column("placed_on", Date, nullable=False),
    Column("review_on", Date, nullable=False),
    Column("released_on", Date),
    Column("released_by", String(EMAIL)),
    Index("ix_legal_holds_active", "released_on"),
)

hold_blocks = Table(
    "hold_blocks",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("hold_id", Integer, ForeignKey("legal_holds.id"), nullable=False),
    Column("occurred_at", DateTime, nullable=False),
    Column("actor", String(EMAIL), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", String(200), nullable=False),
)

request_cases = Table(
    "request_cases",
    ledger_metadata,
    Column("request_id", Integer, primary_key=True),  # support.data_subject_requests.id
    Column("status", String(20), nullable=False),
    Column("identity_requested_on", Date),
    Column("identity_confirmed_on", Date),
    Column("identity_method", String(200)),
    Column("extended", Boolean, nullable=False, default=False),
    Column("extension_reason", Text),
    Column("extension_notified_on", Date),
    Column("closed_on", Date),
    Column("outcome_note", Text),
    Column("updated_at", DateTime, nullable=False),
    Column("version", Integer, nullable=False, default=1),  # optimistic concurrency
)

request_events = Table(
    "request_events",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, nullable=False),
    Column("occurred_at", DateTime, nullable=False),
    Column("effective_on", Date, nullable=False),
    Column("actor", String(EMAIL), nullable=False),
    Column("event", String(40), nullable=False),
    Column("details", Text),
    Index("ix_request_events_request_id", "request_id", "id"),
)

recipient_tasks = Table(
    "recipient_tasks",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", Integer, nullable=False),
    Column("recipient_id", Integer),
    Column("recipient", String(NAME), nullable=False),
    Column("status", String(20), nullable=False),  # open | sent | not_possible
    Column("reason", Text),
    Column("closed_by", String(EMAIL)),
    Column("closed_on", Date),
    Index("ix_recipient_tasks_request_id", "request_id"),
)

erasure_receipts = Table(
    "erasure_receipts",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("subject_ref", String(REF), nullable=False),
    Column("request_id", Integer),
    Column("job_id", Integer),
    Column("created_at", DateTime, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("actor", String(EMAIL), nullable=False),
    Column("receipt", Text, nullable=False),  # canonical JSON, no e-mail or name
)

# Invoices detached from a deleted or erased account and kept for bookkeeping (R14, R15):
# which person's they were, by keyed hash only, so an access request after the deletion
# still finds them (R9). A link expires with the invoice's retention; anonymising the
# invoices past it deletes the links (otherwise the link would re-identify them).
kept_invoices = Table(
    "kept_invoices",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("invoice_id", Integer, nullable=False),
    Column("subject_ref", String(REF), nullable=False),
    Column("retained_until", Date, nullable=False),  # Oslo date (R15)
    Column("created_at", DateTime, nullable=False),  # UTC
    UniqueConstraint("invoice_id", name="uq_kept_invoices_invoice_id"),
    Index("ix_kept_invoices_subject_ref", "subject_ref"),
    Index("ix_kept_invoices_retained_until", "retained_until"),
)

processing_activities = Table(
    "processing_activities",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("purpose", Text, nullable=False),
    Column("legal_basis", String(40), nullable=False),  # 'art. 6(1)(b)' ...
    Column("data_subjects", Text),
    Column("data_categories", Text),
    Column("recipients", Text),
    Column("third_country_transfers", Text),
    Column("retention_rule", Text),
    Column("security_measures", Text),
    Column("updated_on", Date),
)

recipients = Table(
    "recipients",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),  # as the policy names it
    Column("legal_name", String(NAME)),
    Column(
        "role", String(30), nullable=False
    ),  # processor | joint_controller | independent_controller
    Column("purpose", Text),
    Column("data_categories", Text),
    Column("country", CHAR(2)),  # ISO 3166-1 alpha-2
    Column("dpa_signed_on", Date),
    Column("transfer_mechanism", String(20)),  # eea | adequacy | dpf | scc | none
    Column("dpf_checked_on", Date),
    Column("tia_on", Date),
    Column("last_review_on", Date),
    Column("named_in_policy", Boolean, nullable=False, default=False),
    Column("receives_personal_data", Boolean, nullable=False, default=True),
    Column("notes", Text),
)

cookies = Table(
    "cookies",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("provider", String(NAME), nullable=False),
    Column("party", String(10), nullable=False),  # first | third
    Column("category", String(30), nullable=False),  # strictly_necessary | statistics | marketing
    Column("lifetime_days", Integer),
    Column("lifetime", String(60)),  # as the provider states it: '2 years', 'session'
    Column("consent_required", Boolean, nullable=False),
    UniqueConstraint("name", "provider", name="uq_cookies_name_provider"),
)

# --- consent roll-ups (RULES.md R20, R21; DESIGN.md "Consent watermark") -------------------
# Summaries of the consent database's events, kept current from the events with ids above
# the watermark, so consent figures never scan the event history. Subjects appear only as
# keyed hashes of their R20 key ('account:42', 'email:kari@example.no'), never in clear.

# One row (id = 1): how far the roll-up has read and whether it can be used.
consent_rollup_state = Table(
    "consent_rollup_state",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("status", String(12), nullable=False),  # empty | building | ready
    Column("watermark", BigInteger, nullable=False),  # highest consent event id applied
    Column("key_check", CHAR(16)),  # which pseudonym key made the subject refs
    Column("build_token", String(40)),  # the build that owns status 'building'
    Column("build_started_at", DateTime),  # UTC
    Column("built_at", DateTime),  # UTC
    Column("refreshed_at", DateTime),  # UTC
    Column("events_applied", BigInteger, nullable=False),
)

# Event ids at or below the watermark not seen yet: PostgreSQL and MariaDB can commit ids
# out of order, so these are read again until they arrive or fall out of the window.
consent_rollup_gaps = Table(
    "consent_rollup_gaps",
    ledger_metadata,
    Column("event_id", BigInteger, primary_key=True, autoincrement=False),
)


def _histories_table(name: str) -> Table:
    """One row per subject and purpose: its applied events, "<utc microseconds>:<event id>:
    <bucket id>:<g|w|x>" joined by ";" in time order, from which its state changes per Oslo
    day are recomputed when a late or older event arrives, or subtracted when it is erased."""
    return Table(
        name,
        ledger_metadata,
        Column("subject_ref", CHAR(32), primary_key=True),  # keyed hash of the R20 key
        Column("purpose", String(40), primary_key=True),
        Column("history", Text, nullable=False),
        # SQLite: the rows live in the primary-key B-tree itself, one lookup instead of two.
        sqlite_with_rowid=False,
    )


consent_rollup_subjects = _histories_table("consent_rollup_subjects")
# Histories written since the last merge: a row here replaces the subject's row in
# consent_rollup_subjects. A refresh writes here, not into the large table: 100,000
# histories scattered through ten million rows touch most of its pages (about 330 MB written
# on SQLite), this small table a few MB. Merged into the large one when it grows.
consent_rollup_recent = _histories_table("consent_rollup_recent")

# Per purpose and Oslo day, the change in subjects, granted and withdrawn (R21): the
# figures on a day are the sums over the days up to it.
consent_rollup_days = Table(
    "consent_rollup_days",
    ledger_metadata,
    Column("purpose", String(40), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("subjects", Integer, nullable=False),
    Column("granted", Integer, nullable=False),
    Column("withdrawn", Integer, nullable=False),
)

# Events per purpose, Oslo day, action, source and notice version (R21 breakdowns).
consent_rollup_events = Table(
    "consent_rollup_events",
    ledger_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("purpose", String(40), nullable=False),
    Column("day", Date, nullable=False),
    Column("action", String(12), nullable=False),
    Column("source", String(40)),
    Column("notice_version", String(40)),
    Column("events", Integer, nullable=False),
    Index("ix_consent_rollup_events_day", "day", "purpose"),
)

# --- the daily run and its deadline radar (data_access/daily) ------------------------------

# One row per run of `python -m data_access.daily` that acted (a dry run writes nothing).
daily_runs = Table(
    "daily_runs",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("as_of", Date, nullable=False),  # Oslo date the run worked for
    Column("actor", String(EMAIL), nullable=False),
    Column("started_at", DateTime, nullable=False),  # UTC
    Column("finished_at", DateTime),  # UTC; None while it runs (or when it died)
    Column("outcome", String(12), nullable=False),  # running | ok | failed
    Column("counts", Text),  # canonical JSON {"steps": n, "failed": n}
    Column("error", Text),  # the failed steps, in words
    Index("ix_daily_runs_started_at", "started_at"),
)

daily_run_steps = Table(
    "daily_run_steps",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer, ForeignKey("daily_runs.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("step", String(60), nullable=False),
    Column("started_at", DateTime, nullable=False),  # UTC
    Column("finished_at", DateTime),  # UTC
    Column("outcome", String(12), nullable=False),  # running | ok | failed | skipped
    Column("counts", Text),  # canonical JSON, no personal data
    Column("error", Text),
    UniqueConstraint("run_id", "seq", name="uq_daily_run_steps_run_seq"),
)

# One row (id = 1): which run holds the daily run's lock, until when. Taken by a guarded
# UPDATE, so of two runs at once exactly one acts; a lock whose holder died expires.
daily_run_lock = Table(
    "daily_run_lock",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", Integer),
    Column("holder", String(100)),  # host and process id of the run holding it
    Column("expires_at", DateTime),  # UTC; None when free
)

# Each radar item the daily run reported, by its stable key: when first reported (and first
# red), its last severity, whether a DPO acknowledged it and when it was escalated.
radar_items = Table(
    "radar_items",
    ledger_metadata,
    Column("key", String(200), primary_key=True),  # e.g. 'request_due:17:2026-12-10'
    Column("kind", String(40), nullable=False),
    Column("first_reported_at", DateTime, nullable=False),  # UTC
    Column("first_red_at", DateTime),  # UTC
    Column("last_reported_at", DateTime, nullable=False),  # UTC
    Column("severity", String(8), nullable=False),  # red | amber
    Column("acknowledged_at", DateTime),  # UTC
    Column("acknowledged_by", String(EMAIL)),
    Column("escalated_at", DateTime),  # UTC
)

# --- personal-data breaches (GDPR art. 33, 34; RULES.md R50-R53) ---------------------------
# Every breach is logged, also those not notified (art. 33(5)). Times are naive UTC; the
# people affected appear only as keyed hashes of their e-mails (breach_subjects, R18).

breaches = Table(
    "breaches",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(NAME), nullable=False),
    # open | assessed | notified | not_notified | closed
    Column("status", String(20), nullable=False),
    Column("occurred_from", DateTime),  # UTC
    Column("occurred_to", DateTime),  # UTC
    Column("aware_at", DateTime, nullable=False),  # UTC: the clock's start, art. 33(1)
    Column("due_at", DateTime, nullable=False),  # UTC: aware_at + 72 hours (R50)
    Column("reported_by", String(NAME), nullable=False),
    # employee | processor | data_subject | third_party | monitoring | other
    Column("report_channel", String(20), nullable=False),
    Column("processor_id", Integer),  # recipients.id of a processor's notice (art. 33(2))
    Column("processor_notice_at", DateTime),  # UTC: when the processor told the company
    Column("category", String(60)),  # confidentiality,integrity,availability
    Column("cause", String(20)),  # human_error | attack | technical | process | other
    Column("how_arose", Text),
    Column("description", Text),  # what happened
    Column("data_categories", Text),  # JSON list, the register's categories
    Column("subjects_count", Integer),
    Column("subjects_estimated", Boolean, nullable=False, default=False),
    Column("records_count", Integer),
    Column("records_estimated", Boolean, nullable=False, default=False),
    Column("subjects_listed", Integer, nullable=False, default=0),  # e-mails listed (hashed)
    Column("subject_relations", Text),  # JSON list: customers | members | subscribers | visitors
    Column("data_location", Text),  # where the data are now
    Column("consequences", Text),
    Column("measures_taken", Text),
    Column("measures_planned", Text),
    Column("risk", String(10)),  # none | risk | high
    Column("risk_reasoning", Text),
    Column("assessed_at", DateTime),
    Column("assessed_by", String(EMAIL)),
    Column("notify_decision", Boolean),  # to Datatilsynet, art. 33(1)
    Column("notify_reasoning", Text),
    Column("notify_decided_at", DateTime),
    Column("notify_decided_by", String(EMAIL)),
    Column("notified_at", DateTime),  # UTC
    Column("notification_reference", String(100)),
    Column("delay_reasons", Text),  # a notification after due_at, art. 33(1)
    Column("phase_missing", Text),  # art. 33(4): what is still to follow
    Column("phase_follows_on", Date),  # Oslo date
    Column("subjects_decision", Boolean),  # to the data subjects, art. 34
    Column("subjects_reasoning", Text),
    Column("subjects_exemption", String(10)),  # art. 34(3): a | b | c
    Column("subjects_how", Text),
    Column("subjects_notified_at", DateTime),  # UTC
    Column("subjects_decided_at", DateTime),
    Column("subjects_decided_by", String(EMAIL)),
    Column("closed_at", DateTime),
    Column("closed_by", String(EMAIL)),
    Column("closing_note", Text),
    Column("created_at", DateTime, nullable=False),  # UTC: when it was logged
    Column("created_by", String(EMAIL), nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("version", Integer, nullable=False, default=1),  # optimistic concurrency
    Index("ix_breaches_status", "status", "due_at"),
    Index("ix_breaches_created_at", "created_at"),
)

# The timeline: one row per change, naming the fields changed and the decisions taken; no
# free text and no personal data (those stay in the breach row, which erasure redacts).
breach_events = Table(
    "breach_events",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("breach_id", Integer, ForeignKey("breaches.id"), nullable=False),
    Column("occurred_at", DateTime, nullable=False),  # UTC
    Column("actor", String(EMAIL), nullable=False),
    Column("event", String(40), nullable=False),
    Column("details", Text),  # canonical JSON
    Index("ix_breach_events_breach_id", "breach_id", "id"),
)

# Links to the affected data: processing activities and recipients/processors of the register.
breach_links = Table(
    "breach_links",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("breach_id", Integer, ForeignKey("breaches.id"), nullable=False),
    Column("kind", String(20), nullable=False),  # activity | recipient
    Column("ref_id", Integer, nullable=False),  # processing_activities.id | recipients.id
    UniqueConstraint("breach_id", "kind", "ref_id", name="uq_breach_links"),
)

# People affected, listed by e-mail: only the keyed hash is kept (R18). Erasure deletes the
# person's rows; the breach keeps its counts.
breach_subjects = Table(
    "breach_subjects",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("breach_id", Integer, ForeignKey("breaches.id"), nullable=False),
    Column("subject_ref", CHAR(64), nullable=False),
    Column("added_at", DateTime, nullable=False),
    UniqueConstraint("breach_id", "subject_ref", name="uq_breach_subjects"),
    Index("ix_breach_subjects_subject_ref", "subject_ref"),
)

LEDGER_TABLES = [t.name for t in ledger_metadata.sorted_tables]
