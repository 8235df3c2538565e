"""Retention (RULES.md R13-R18): what is due for deletion, purge or anonymisation, and the
actions that do it.

- `queries`: accounts nearing deletion, support logs and invoices past retention.
- `notices`: inactivity notices to account holders (R13).
- `deletion`: approved account deletions as resumable jobs (R14).
- `purges`: support-log purges (R16) and invoice anonymisation (R15).
- `plan`: what a deletion would delete and keep, per database (R14), for its confirmation.
"""

from data_access.retention.deletion import approve_deletions
from data_access.retention.notices import send_deletion_notices, undelivered_notices
from data_access.retention.plan import PLAN_COLUMNS, deletion_plan
from data_access.retention.purges import anonymise_invoices, purge_support_contacts
from data_access.retention.queries import (
    ACCOUNT_COLUMNS,
    CONTACT_COLUMNS,
    INVOICE_COLUMNS,
    STAGES,
    account_holds,
    account_states,
    accounts_nearing_deletion,
    count_invoices_past_retention,
    count_support_contacts_past_retention,
    inactivity_cutoff,
    invoices_past_retention,
    latest_start_within,
    stage_counts,
    support_contacts_past_retention,
    support_started_cutoff,
)
from data_access.retention.runner import resume_job

__all__ = [
    "anonymise_invoices",
    "approve_deletions",
    "deletion_plan",
    "purge_support_contacts",
    "resume_job",
    "send_deletion_notices",
    "undelivered_notices",
    "ACCOUNT_COLUMNS",
    "CONTACT_COLUMNS",
    "INVOICE_COLUMNS",
    "PLAN_COLUMNS",
    "STAGES",
    "account_holds",
    "account_states",
    "accounts_nearing_deletion",
    "count_invoices_past_retention",
    "count_support_contacts_past_retention",
    "inactivity_cutoff",
    "invoices_past_retention",
    "latest_start_within",
    "stage_counts",
    "support_contacts_past_retention",
    "support_started_cutoff",
]
