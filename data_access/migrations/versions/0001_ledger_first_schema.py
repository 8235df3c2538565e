"""ledger first schema

Revision ID: 0001
Revises: none
Create Date: 2026-11-29

The ledger's tables as DESIGN.md lists them: audit log, notices, outbox, jobs and job steps,
legal holds and blocked attempts, request cases and events, recipient tasks, erasure
receipts, and the register (processing activities, recipients, cookies).
"""

import sqlalchemy as sa
from alembic import op

# MariaDB commits each DDL statement on its own, so a migration interrupted half-way leaves
# some tables behind. Every step checks first, so running the migration again finishes it.


def _missing_table(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def _create_index(table: str, name: str, columns: list[str]) -> None:
    existing = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(table)}
    if name not in existing:
        op.create_index(name, table, columns)


def _seed_audit_head() -> None:
    """The chain head row exists from the start: two first appends at once would otherwise
    both try to insert it and one would fail (audit.append locks this row)."""
    head = sa.table("audit_head", sa.column("id"), sa.column("hash"), sa.column("entries"))
    bind = op.get_bind()
    if bind.execute(sa.select(head.c.id).where(head.c.id == 1)).first() is None:
        op.bulk_insert(head, [{"id": 1, "hash": "0" * 64, "entries": 0}])


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    if _missing_table("audit_log"):
        op.create_table(
            "audit_log",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("occurred_at", sa.DateTime(), nullable=False),
            sa.Column("actor", sa.String(length=320), nullable=False),
            sa.Column("action", sa.String(length=60), nullable=False),
            sa.Column("rule", sa.String(length=20), nullable=True),
            sa.Column("store", sa.String(length=20), nullable=True),
            sa.Column("subject_ref", sa.String(length=64), nullable=True),
            sa.Column("target", sa.String(length=200), nullable=True),
            sa.Column("counts", sa.Text(), nullable=True),
            sa.Column("details", sa.Text(), nullable=True),
            sa.Column("prev_hash", sa.CHAR(length=64), nullable=False),
            sa.Column("hash", sa.CHAR(length=64), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if _missing_table("audit_head"):
        op.create_table(
            "audit_head",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("hash", sa.CHAR(length=64), nullable=False),
            sa.Column("entries", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    _seed_audit_head()
    if _missing_table("cookies"):
        op.create_table(
            "cookies",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=100), nullable=False),
            sa.Column("provider", sa.String(length=200), nullable=False),
            sa.Column("party", sa.String(length=10), nullable=False),
            sa.Column("category", sa.String(length=30), nullable=False),
            sa.Column("lifetime_days", sa.Integer(), nullable=True),
            sa.Column("lifetime", sa.String(length=60), nullable=True),
            sa.Column("consent_required", sa.Boolean(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("name", "provider", name="uq_cookies_name_provider"),
        )
    if _missing_table("erasure_receipts"):
        op.create_table(
            "erasure_receipts",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("subject_ref", sa.String(length=64), nullable=False),
            sa.Column("request_id", sa.Integer(), nullable=True),
            sa.Column("job_id", sa.Integer(), nullable=True),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("as_of", sa.Date(), nullable=False),
            sa.Column("actor", sa.String(length=320), nullable=False),
            sa.Column("receipt", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if _missing_table("jobs"):
        op.create_table(
            "jobs",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(length=40), nullable=False),
            sa.Column("idempotency_key", sa.String(length=100), nullable=True),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("actor", sa.String(length=320), nullable=False),
            sa.Column("as_of", sa.Date(), nullable=False),
            sa.Column("status", sa.String(length=12), nullable=False),
            sa.Column("params", sa.Text(), nullable=True),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("finished_at", sa.DateTime(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("idempotency_key"),
        )
    if _missing_table("legal_holds"):
        op.create_table(
            "legal_holds",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("scope", sa.String(length=10), nullable=False),
            sa.Column("email", sa.String(length=320), nullable=True),
            sa.Column("subject_ref", sa.String(length=64), nullable=True),
            sa.Column("account_id", sa.Integer(), nullable=True),
            sa.Column("contact_id", sa.Integer(), nullable=True),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("case_ref", sa.String(length=100), nullable=False),
            sa.Column("owner", sa.String(length=320), nullable=False),
            sa.Column("placed_by", sa.String(length=320), nullable=False),
            sa.Column("placed_on", sa.Date(), nullable=False),
            sa.Column("review_on", sa.Date(), nullable=False),
            sa.Column("released_on", sa.Date(), nullable=True),
            sa.Column("released_by", sa.String(length=320), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
    _create_index("legal_holds", "ix_legal_holds_active", ["released_on"])

    if _missing_table("notices"):
        op.create_table(
            "notices",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("account_id", sa.Integer(), nullable=False),
            sa.Column("sent_on", sa.Date(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("actor", sa.String(length=320), nullable=False),
            sa.Column("last_activity_on", sa.Date(), nullable=False),
            sa.Column("deletable_on", sa.Date(), nullable=False),
            sa.Column("outbox_id", sa.Integer(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
    _create_index("notices", "ix_notices_account_id", ["account_id", "sent_on"])

    if _missing_table("outbox"):
        op.create_table(
            "outbox",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("kind", sa.String(length=40), nullable=False),
            sa.Column("to_email", sa.String(length=320), nullable=False),
            sa.Column("subject_ref", sa.String(length=64), nullable=False),
            sa.Column("subject", sa.String(length=300), nullable=False),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("status", sa.String(length=12), nullable=False),
            sa.Column("attempts", sa.Integer(), nullable=False),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.Column("sent_at", sa.DateTime(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
    _create_index("outbox", "ix_outbox_status", ["status", "id"])

    if _missing_table("processing_activities"):
        op.create_table(
            "processing_activities",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("purpose", sa.Text(), nullable=False),
            sa.Column("legal_basis", sa.String(length=40), nullable=False),
            sa.Column("data_subjects", sa.Text(), nullable=True),
            sa.Column("data_categories", sa.Text(), nullable=True),
            sa.Column("recipients", sa.Text(), nullable=True),
            sa.Column("third_country_transfers", sa.Text(), nullable=True),
            sa.Column("retention_rule", sa.Text(), nullable=True),
            sa.Column("security_measures", sa.Text(), nullable=True),
            sa.Column("updated_on", sa.Date(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("name"),
        )
    if _missing_table("recipient_tasks"):
        op.create_table(
            "recipient_tasks",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("request_id", sa.Integer(), nullable=False),
            sa.Column("recipient_id", sa.Integer(), nullable=True),
            sa.Column("recipient", sa.String(length=200), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("closed_by", sa.String(length=320), nullable=True),
            sa.Column("closed_on", sa.Date(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
    _create_index("recipient_tasks", "ix_recipient_tasks_request_id", ["request_id"])

    if _missing_table("recipients"):
        op.create_table(
            "recipients",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("legal_name", sa.String(length=200), nullable=True),
            sa.Column("role", sa.String(length=30), nullable=False),
            sa.Column("purpose", sa.Text(), nullable=True),
            sa.Column("data_categories", sa.Text(), nullable=True),
            sa.Column("country", sa.CHAR(length=2), nullable=True),
            sa.Column("dpa_signed_on", sa.Date(), nullable=True),
            sa.Column("transfer_mechanism", sa.String(length=20), nullable=True),
            sa.Column("dpf_checked_on", sa.Date(), nullable=True),
            sa.Column("tia_on", sa.Date(), nullable=True),
            sa.Column("last_review_on", sa.Date(), nullable=True),
            sa.Column("named_in_policy", sa.Boolean(), nullable=False),
            sa.Column("receives_personal_data", sa.Boolean(), nullable=False),
            sa.Column("notes", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("name"),
        )
    if _missing_table("request_cases"):
        op.create_table(
            "request_cases",
            sa.Column("request_id", sa.Integer(), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("identity_requested_on", sa.Date(), nullable=True),
            sa.Column("identity_confirmed_on", sa.Date(), nullable=True),
            sa.Column("identity_method", sa.String(length=200), nullable=True),
            sa.Column("extended", sa.Boolean(), nullable=False),
            sa.Column("extension_reason", sa.Text(), nullable=True),
            sa.Column("extension_notified_on", sa.Date(), nullable=True),
            sa.Column("closed_on", sa.Date(), nullable=True),
            sa.Column("outcome_note", sa.Text(), nullable=True),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("request_id"),
        )
    if _missing_table("request_events"):
        op.create_table(
            "request_events",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("request_id", sa.Integer(), nullable=False),
            sa.Column("occurred_at", sa.DateTime(), nullable=False),
            sa.Column("effective_on", sa.Date(), nullable=False),
            sa.Column("actor", sa.String(length=320), nullable=False),
            sa.Column("event", sa.String(length=40), nullable=False),
            sa.Column("details", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
    _create_index("request_events", "ix_request_events_request_id", ["request_id", "id"])

    if _missing_table("hold_blocks"):
        op.create_table(
            "hold_blocks",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("hold_id", sa.Integer(), nullable=False),
            sa.Column("occurred_at", sa.DateTime(), nullable=False),
            sa.Column("actor", sa.String(length=320), nullable=False),
            sa.Column("action", sa.String(length=60), nullable=False),
            sa.Column("target", sa.String(length=200), nullable=False),
            sa.ForeignKeyConstraint(
                ["hold_id"],
                ["legal_holds.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
        )
    if _missing_table("job_steps"):
        op.create_table(
            "job_steps",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("job_id", sa.Integer(), nullable=False),
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("target", sa.String(length=200), nullable=False),
            sa.Column("store", sa.String(length=20), nullable=False),
            sa.Column("step", sa.String(length=60), nullable=False),
            sa.Column("status", sa.String(length=12), nullable=False),
            sa.Column("counts", sa.Text(), nullable=True),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("done_at", sa.DateTime(), nullable=True),
            sa.ForeignKeyConstraint(
                ["job_id"],
                ["jobs.id"],
            ),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("job_id", "seq", name="uq_job_steps_job_seq"),
        )


def downgrade() -> None:
    op.drop_table("job_steps")
    op.drop_table("hold_blocks")
    op.drop_index("ix_request_events_request_id", table_name="request_events")

    op.drop_table("request_events")
    op.drop_table("request_cases")
    op.drop_table("recipients")
    op.drop_index("ix_recipient_tasks_request_id", table_name="recipient_tasks")

    op.drop_table("recipient_tasks")
    op.drop_table("processing_activities")
    op.drop_index("ix_outbox_status", table_name="outbox")

    op.drop_table("outbox")
    op.drop_index("ix_notices_account_id", table_name="notices")

    op.drop_table("notices")
    op.drop_index("ix_legal_holds_active", table_name="legal_holds")

    op.drop_table("legal_holds")
    op.drop_table("jobs")
    op.drop_table("erasure_receipts")
    op.drop_table("cookies")
    op.drop_table("audit_log")
    op.drop_table("audit_head")
