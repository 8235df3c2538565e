"""The three source databases' contract tables (DESIGN.md "Source schemas").

The company's systems own these tables; the dashboard reads them and changes them only
through named actions. `create_all` creates them for the demo and for tests; production
exposes the same names (or views of them). Times are naive UTC DATETIMEs (never MariaDB
TIMESTAMP, which ends in 2038); strings have lengths so UNIQUE works on MariaDB.
The indexes are the ones the dashboard's queries filter and sort on; each says in its
`info` which rules need it and what is slow without it (`data_access.indexes` compares
them with a company's database).
"""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    func,
    or_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

EMAIL, NAME, PHONE = 320, 200, 40


def slow_without(*rules_and_cost: str) -> dict:
    """An index's `info`: the rules whose queries need it and what is slow without it
    (shown by the health check and `python -m data_access.indexes`)."""
    *rules, cost = rules_and_cost
    return {"rules": tuple(rules), "slow_without": cost}


# --- users ---------------------------------------------------------------------------------
users_metadata = MetaData()

accounts = Table(
    "accounts",
    users_metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(EMAIL), nullable=False, unique=True),
    Column("full_name", String(NAME), nullable=False),
    Column("account_type", String(20), nullable=False),  # 'personal' | 'professional'
    Column("company_name", String(NAME)),
    Column("contact_person", String(NAME)),
    Column("created_at", DateTime, nullable=False),
    Column("last_active_at", DateTime),
    Index(
        "ix_accounts_last_active_at",
        "last_active_at",
        info=slow_without(
            "R13",
            "the Accounts nearing deletion page and the Overview's R13 counts read every account to find the inactive ones",
        ),
    ),
    Index(
        "ix_accounts_created_at",
        "created_at",
        info=slow_without(
            "R13",
            "the Accounts nearing deletion page reads every account to find those never active",
        ),
    ),
)

account_members = Table(
    "account_members",
    users_metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("full_name", String(NAME)),
    Column("email", String(EMAIL)),
    Column("role", String(20)),  # 'admin' | 'member'
    Column("created_at", DateTime),
    Column("last_active_at", DateTime),
    Index(
        "ix_account_members_account_id",
        "account_id",
        "last_active_at",
        info=slow_without(
            "R13",
            "R14",
            "R13 scans every member row per inactive account (the Accounts page and the Overview hang at scale); an R14 deletion scans them per account",
        ),
    ),
    Index(
        "ix_account_members_email",
        "email",
        info=slow_without(
            "R9",
            "R12",
            "Subject lookup, access reports and erasures scan every member row per person",
        ),
    ),
    Index(
        "ix_account_members_last_active_at",
        "last_active_at",
        "account_id",
        info=slow_without(
            "R13",
            "stage counts and the accounts nearing deletion read every member row to find "
            "the members active in a window",
        ),
    ),
)

invoices = Table(
    "invoices",
    users_metadata,
    Column("id", Integer, primary_key=True),
    Column("invoice_number", String(40), nullable=False, unique=True),
    Column("account_id", Integer),  # NULL once detached from a deleted account (R14)
    Column("customer_name", String(NAME)),
    Column("contact_person", String(NAME)),
    Column("amount", Numeric(12, 2)),
    Column("currency", CHAR(3)),
    Column("issued_on", Date),
    Column("paid_on", Date),
    Index(
        "ix_invoices_account_id",
        "account_id",
        info=slow_without(
            "R9", "R14", "Subject lookup and account deletions scan every invoice per account"
        ),
    ),
    Index(
        "ix_invoices_issued_on",
        "issued_on",
        "id",
        info=slow_without(
            "R15", "the Retention page and the Overview's invoice count read every invoice"
        ),
    ),
)


class latest_of(FunctionElement):  # noqa: N801 - an SQL function, named like one
    """The latest of two non-NULL timestamps: `greatest(a, b)`, on SQLite `max(a, b)`."""

    type = DateTime()
    name = "latest_of"
    inherit_cache = True


@compiles(latest_of)
def _latest_of(element, compiler, **kw) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"


@compiles(latest_of, "sqlite")
def _latest_of_sqlite(element, compiler, **kw) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


def own_activity(table: Table = accounts):
    """An account's own latest activity (naive UTC): the later of `created_at` and
    `last_active_at` (RULES.md R13, before its members' activity is taken into account).
    The same expression as the index `ix_accounts_own_activity`, so the window queries
    read that index as a range."""
    created = table.c.created_at
    return latest_of(created, func.coalesce(table.c.last_active_at, created))


# Indexes on an expression or with a WHERE clause: SQLite and PostgreSQL have them, MariaDB
# has neither (there the window queries still run, reading the plain indexes).
EXPRESSION_INDEX_DIALECTS = ("sqlite", "postgresql")
Index("ix_accounts_own_activity", own_activity(), accounts.c.id).ddl_if(
    dialect=EXPRESSION_INDEX_DIALECTS
)
_HOLDS_PERSONAL_DATA = or_(
    invoices.c.customer_name.is_not(None), invoices.c.contact_person.is_not(None)
)
Index(
    "ix_invoices_personal_issued_on",
    invoices.c.issued_on,
    invoices.c.id,
    sqlite_where=_HOLDS_PERSONAL_DATA,
    postgresql_where=_HOLDS_PERSONAL_DATA,
).ddl_if(dialect=EXPRESSION_INDEX_DIALECTS)


def invoice_holds_personal_data():
    """True for an invoice that still names a person (R15: not yet anonymised); the
    condition of the partial index `ix_invoices_personal_issued_on`."""
    return _HOLDS_PERSONAL_DATA


usage_sessions = Table(
    "usage_sessions",
    users_metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("duration_s", Integer),
    Column("feature", String(80)),
    Index(
        "ix_usage_sessions_account_id",
        "account_id",
        "started_at",
        info=slow_without(
            "R13",
            "R22",
            "R13 activity and R22 (processing without consent) scan every usage session per account",
        ),
    ),
    Index(
        "ix_usage_sessions_started_at",
        "started_at",
        info=slow_without(
            "R22",
            "R22 (processing without consent) on the Consent page and the Overview reads every usage session",
        ),
    ),
)

# --- consent -------------------------------------------------------------------------------
consent_metadata = MetaData()

notice_versions = Table(
    "notice_versions",
    consent_metadata,
    Column("version", String(40), primary_key=True),
    Column("purpose", String(40), nullable=False),
    Column("published_on", Date, nullable=False),
    Column("text_sha256", CHAR(64)),
    Column("text", Text),
)

consent_events = Table(
    "consent_events",
    consent_metadata,
    Column("id", Integer, primary_key=True),  # monotonic; the roll-up watermark
    Column("account_id", Integer),
    Column("email", String(EMAIL)),
    Column("visitor_id", String(64)),
    Column("purpose", String(40), nullable=False),
    Column("action", String(12), nullable=False),  # 'granted' | 'withdrawn'
    Column("occurred_at", DateTime, nullable=False),
    Column("source", String(40)),
    Column("notice_version", String(40)),
    Index(
        "ix_consent_events_purpose_time",
        "purpose",
        "occurred_at",
        info=slow_without(
            "R20", "R21", "the Consent page's figures per purpose and day read every consent event"
        ),
    ),
    Index(
        "ix_consent_events_account_id",
        "account_id",
        info=slow_without(
            "R9", "R12", "Subject lookup and erasures scan every consent event per account"
        ),
    ),
    Index(
        "ix_consent_events_email",
        "email",
        info=slow_without(
            "R9", "R12", "Subject lookup and erasures scan every consent event per e-mail"
        ),
    ),
    Index(
        "ix_consent_events_visitor_id",
        "visitor_id",
        info=slow_without(
            "R9", "R12", "Subject lookup and erasures scan every consent event per visitor id"
        ),
    ),
)

newsletter_subscribers = Table(
    "newsletter_subscribers",
    consent_metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(EMAIL), nullable=False, unique=True),
    Column("full_name", String(NAME)),
    Column("subscribed_at", DateTime),
    Column("unsubscribed_at", DateTime),
)

# --- support -------------------------------------------------------------------------------
support_metadata = MetaData()

contacts = Table(
    "contacts",
    support_metadata,
    Column("id", Integer, primary_key=True),
    Column("channel", String(10), nullable=False),  # 'chat' | 'email' | 'phone'
    Column("started_at", DateTime, nullable=False),
    Column("full_name", String(NAME)),
    Column("email", String(EMAIL)),
    Column("phone", String(PHONE)),
    Column("location", String(NAME)),
    Column("account_id", Integer),
    Column("summary", Text),
    Index(
        "ix_contacts_started_at",
        "started_at",
        "id",
        info=slow_without(
            "R16", "the Retention page and the Overview's support-log count read every contact"
        ),
    ),
    Index(
        "ix_contacts_email",
        "email",
        info=slow_without(
            "R9", "R12", "Subject lookup and erasures scan every support contact per e-mail"
        ),
    ),
    Index(
        "ix_contacts_account_id",
        "account_id",
        info=slow_without(
            "R9", "R12", "Subject lookup and erasures scan every support contact per account"
        ),
    ),
)

data_subject_requests = Table(
    "data_subject_requests",
    support_metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", DateTime, nullable=False),
    Column("channel", String(20)),
    Column("request_type", String(20), nullable=False),
    Column("subject_email", String(EMAIL), nullable=False),
    Column("subject_name", String(NAME)),
    Column("account_id", Integer),
    Column("details", Text),
    Index(
        "ix_dsr_received_at",
        "received_at",
        "id",
        info=slow_without(
            "R1",
            "R2",
            "R8",
            "the Data-subject requests page and the Overview's request counts read every request",
        ),
    ),
    Index(
        "ix_dsr_subject_email",
        "subject_email",
        info=slow_without(
            "R12", "duplicate detection and Subject lookup scan every request per e-mail"
        ),
    ),
)

SOURCE_METADATA = {
    "users": users_metadata,
    "consent": consent_metadata,
    "support": support_metadata,
}

REQUEST_TYPES = (
    "access",
    "rectification",
    "erasure",
    "restriction",
    "portability",
    "objection",
    "withdraw_consent",
)
CHANNELS = ("chat", "email", "phone")
CONSENT_PURPOSES = ("usage_statistics", "newsletter", "website_statistics", "marketing")
