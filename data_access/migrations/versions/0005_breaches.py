"""breach register

Revision ID: 0005_breaches
Revises: 0004_job_leases
Create Date: 2026-12-04

The breach register (GDPR art. 33(5); RULES.md R50-R53): every personal-data breach with its
72-hour clock and decisions, its timeline, its links to the register's processing activities
and recipients, and the people affected as keyed hashes of their e-mails only (R18). Checks
first, like 0001-0004, so a run interrupted on MariaDB finishes when run again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_breaches"
down_revision = "0004_job_leases"
branch_labels = None
depends_on = None

TABLES = ("breach_subjects", "breach_links", "breach_events", "breaches")  # children first


def _missing_table(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def _create_index(table: str, name: str, columns: list[str]) -> None:
    existing = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(table)}
    if name not in existing:
        op.create_index(name, table, columns)


def upgrade() -> None:
    if _missing_table("breaches"):
        op.create_table(
            "breaches",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("title", sa.String(length=200), nullable=False),
            sa.Column("status", sa.String(length=20), nullable=False),
            sa.Column("occurred_from", sa.DateTime(), nullable=True),
            sa.Column("occurred_to", sa.DateTime(), nullable=True),
            sa.Column("aware_at", sa.DateTime(), nullable=False),
            sa.Column("due_at", sa.DateTime(), nullable=False),
            sa.Column("reported_by", sa.String(length=200), nullable=False),
            sa.Column("report_channel", sa.String(length=20), nullable=False),
            sa.Column("processor_id", sa.Integer(), nullable=True),
            sa.Column("processor_notice_at", sa.DateTime(), nullable=True),
            sa.Column("category", sa.String(length=60), nullable=True),
            sa.Column("cause", sa.String(length=20), nullable=True),
            sa.Column("how_arose", sa.Text(), nullable=True),
            sa.Column("description", sa.Text(), nullable=True),
            sa.Column("data_categories", sa.Text(), nullable=True),
            sa.Column("subjects_count", sa.Integer(), nullable=True),
            sa.Column("subjects_estimated", sa.Boolean(), nullable=False),
            sa.Column("records_count", sa.Integer(), nullable=True),
            sa.Column("records_estimated", sa.Boolean(), nullable=False),
            sa.Column("subjects_listed", sa.Integer(), nullable=False),
            sa.Column("subject_relations", sa.Text(), nullable=True),
            sa.Column("data_location", sa.Text(), nullable=True),
            sa.Column("consequences", sa.Text(), nullable=True),
            sa.Column("measures_taken", sa.Text(), nullable=True),
            sa.Column("measures_planned", sa.Text(), nullable=True),
            sa.Column("risk", sa.String(length=10), nullable=True),
            sa.Column("risk_reasoning", sa.Text(), nullable=True),
            sa.Column("assessed_at", sa.DateTime(), nullable=True),
            sa.Column("assessed_by", sa.String(length=320), nullable=True),
            sa.Column("notify_decision", sa.Boolean(), nullable=True),
            sa.Column("notify_reasoning", sa.Text(), nullable=True),
            sa.Column("notify_decided_at", sa.DateTime(), nullable=True),
            sa.Column("notify_decided_by", sa.String(length=320), nullable=True),
            sa.Column("notified_at", sa.DateTime(), nullable=True),
            sa.Column("notification_reference", sa.String(length=100), nullable=True),
            sa.Column("delay_reasons", sa.Text(), nullable=True),
            sa.Column("phase_missing", sa.Text(), nullable=True),
            sa.Column("phase_follows_on", sa.Date(), nullable=True),
            sa.Column("subjects_decision", sa.Boolean(), nullable=True),
            sa.Column("subjects_reasoning", sa.Text(), nullable=True),
            sa.Column("subjects_exemption", sa.String(length=10), nullable=True),
            sa.Column("subjects_how", sa.Text(), nullable=True),
            sa.Column("subjects_notified_at", sa.DateTime(), nullable=True),
            sa.Column("subjects_decided_at", sa.DateTime(), nullable=True),
            sa.Column("subjects_decided_by", sa.String(length=320), nullable=True),
            sa.Column("closed_at", sa.DateTime(), nullable=True),
            sa.Column("closed_by", sa.String(length=320), nullable=True),
            sa.Column("closing_note", sa.Text(), nullable=True),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("created_by", sa.String(length=320), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    _create_index("breaches", "ix_breaches_created_at", ["created_at"])
    _create_index("breaches", "ix_breaches_status", ["status", "due_at"])
    if _missing_table("breach_events"):
        op.create_table(
            "breach_events",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("breach_id", sa.Integer(), nullable=False),
            sa.Column("occurred_at", sa.DateTime(), nullable=False),
            sa.Column("actor", sa.String(length=320), nullable=False),
            sa.Column("event", sa.String(length=40), nullable=False),
            sa.Column("details", sa.Text(), nullable=True),
            sa.ForeignKeyConstraint(["breach_id"], ["breaches.id"]),
            sa.PrimaryKeyConstraint("id"),
        )
    _create_index("breach_events", "ix_breach_events_breach_id", ["breach_id", "id"])
    if _missing_table("breach_links"):
        op.create_table(
            "breach_links",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("breach_id", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(length=20), nullable=False),
            sa.Column("ref_id", sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(["breach_id"], ["breaches.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("breach_id", "kind", "ref_id", name="uq_breach_links"),
        )
    if _missing_table("breach_subjects"):
        op.create_table(
            "breach_subjects",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("breach_id", sa.Integer(), nullable=False),
            sa.Column("subject_ref", sa.CHAR(length=64), nullable=False),
            sa.Column("added_at", sa.DateTime(), nullable=False),
            sa.ForeignKeyConstraint(["breach_id"], ["breaches.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("breach_id", "subject_ref", name="uq_breach_subjects"),
        )
    _create_index("breach_subjects", "ix_breach_subjects_subject_ref", ["subject_ref"])


def downgrade() -> None:
    for name in TABLES:
        if not _missing_table(name):
            op.drop_table(name)
