"""Policy versus reality: what the privacy policy promises, checked against the data.

Each check compares one promise (config.toml [policy_facts] and the `Policy` numbers, which
default to the policy's own figures) with what the four databases show, and counts the
records that break it: recipients the policy names against the register (R31, R32),
customer-service logs older than 6 months (R16), accounts inactive beyond 12 months without
a notice and notified accounts past their deletion date (R13), invoices past bookkeeping
retention (R15), processing without consent (R22), overdue data-subject requests (R8), and
the breach register: clocks run out (R50), decisions without reasoning (R51) and no breach
logged for `policy.breach_log_months` (R53).

Checks are independent: a database that is down or breaks the contract makes its checks
say so (count None, `problem` set) while the others still count.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import pandas as pd
from sqlalchemy.exc import SQLAlchemyError

from data_access import consent, register, requests, retention
from data_access.breaches import findings as breach_findings
from data_access.clock import today_oslo
from data_access.engines import Databases, DatabaseUnavailable
from data_access.failures import in_words

COLUMNS = ["severity", "area", "promise", "reality", "count", "rule", "page", "problem"]
SEVERITY_ORDER = ("high", "medium", "low", "ok", "unknown")


@dataclass(frozen=True)
class Check:
    """One promise of the policy and how to count the records that break it."""

    area: str
    rule: str
    page: str  # pages/_ui.PAGE_FILES key of the page that fixes it
    severity: str  # when count > 0
    promise: Callable[[Databases], str]
    reality: Callable[[int], str]
    count: Callable[[Data], int]


class Data:
    """What the checks read, each at most once per `policy_findings` call (two checks share
    the accounts' stages, two the R22 counts)."""

    def __init__(self, dbs: Databases, as_of: date):
        self.dbs, self.as_of = dbs, as_of

    @cached_property
    def stages(self) -> dict[str, int]:
        # Window 0: accounts whose 12 months are over (or whose notice period has ended).
        return retention.stage_counts(self.dbs, self.as_of, 0)

    @cached_property
    def without_consent(self) -> dict[str, int]:
        return consent.processing_without_consent_counts(self.dbs, self.as_of)


def policy_findings(dbs: Databases, as_of: date | None = None) -> pd.DataFrame:
    """Every policy-versus-reality check on the Oslo date `as_of`, broken promises first.

    Columns: severity ('high' | 'medium' | 'low' when count > 0; 'ok' at 0; 'unknown' when
    the data could not be read), area, promise (what the policy says), reality (what the
    data shows), count (records that break the promise; None when unknown), rule (RULES.md
    id), page (key of the page that fixes it, as in pages/_ui.PAGE_FILES), problem (why the
    count is unknown, else None). Sorted by severity, then area.
    """
    data = Data(dbs, as_of or today_oslo())
    rows = [_run(check, data) for check in CHECKS]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["_rank"] = frame["severity"].map(SEVERITY_ORDER.index)
    frame = frame.sort_values(["_rank", "area"], kind="stable").drop(columns="_rank")
    return frame.reset_index(drop=True).astype({"count": "Int64"})


def _run(check: Check, data: Data) -> dict:
    row = {
        "area": check.area,
        "promise": check.promise(data.dbs),
        "rule": check.rule,
        "page": check.page,
        "problem": None,
    }
    try:
        count = int(check.count(data))
    except (DatabaseUnavailable, SQLAlchemyError) as exc:
        # One unreadable database leaves the other checks standing; the row says which.
        reason = in_words(exc)
        return {**row, "severity": "unknown", "reality": "Could not be checked.", "count": None,
                "problem": reason}  # fmt: skip
    severity = check.severity if count else "ok"
    return {**row, "severity": severity, "reality": check.reality(count), "count": count}


def _policy(dbs: Databases):
    return dbs.policy


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


# --- the counts ------------------------------------------------------------------------------


def _recipients_not_matching(data: Data) -> int:
    return len(register.policy_name_findings(data.dbs))


def _social_media_pages(data: Data) -> int:
    return len(register.social_media_findings(data.dbs))


def _support_logs(data: Data) -> int:
    return retention.count_support_contacts_past_retention(data.dbs, data.as_of)


def _accounts_without_notice(data: Data) -> int:
    return data.stages["notice_due"]  # past 12 months, no valid notice (R13)


def _accounts_past_deletion(data: Data) -> int:
    return data.stages["ready"]  # notified, deletable_on passed, still there (R13, R14)


def _invoices(data: Data) -> int:
    return retention.count_invoices_past_retention(data.dbs, data.as_of)


def _sessions_without_consent(data: Data) -> int:
    return data.without_consent["usage_sessions"]


def _subscribers_without_consent(data: Data) -> int:
    return data.without_consent["newsletter_subscribers"]


def _overdue_requests(data: Data) -> int:
    return requests.request_counts(data.dbs, data.as_of)["overdue"]


def _breach_clocks(data: Data) -> int:
    return breach_findings.clocks_run_out(data.dbs, data.as_of)


def _breach_reasoning(data: Data) -> int:
    return breach_findings.decisions_without_reasoning(data.dbs, data.as_of)


def _quiet_breach_log(data: Data) -> int:
    return breach_findings.quiet_log(data.dbs, data.as_of)


CHECKS = (
    Check(
        area="Recipients",
        rule="R32",
        page="register",
        severity="high",
        promise=lambda dbs: (
            "The policy names every recipient: "
            + ", ".join(register.policy_facts(dbs).recipients)
            + "."
        ),
        reality=lambda n: _plural(
            n,
            "recipient is named by the policy but not in the register, or the reverse.",
            "recipients are named by the policy but not in the register, or the reverse.",
        ),
        count=_recipients_not_matching,
    ),
    Check(
        area="Social media",
        rule="R31",
        page="register",
        severity="medium",
        promise=lambda dbs: (
            "Data from the company's pages on "
            + ", ".join(register.policy_facts(dbs).social_media)
            + ' "is not available to us".'
        ),
        reality=lambda n: _plural(
            n,
            "platform makes the company joint controller for page statistics (CJEU C-210/16).",
            "platforms make the company joint controller for page statistics (CJEU C-210/16).",
        ),
        count=_social_media_pages,
    ),
    Check(
        area="Customer service",
        rule="R16",
        page="retention",
        severity="medium",
        promise=lambda dbs: (
            f"Chat, e-mail and phone logs are kept {_policy(dbs).support_log_months} months."
        ),
        reality=lambda n: _plural(
            n, "log is older and still present.", "logs are older and still present."
        ),
        count=_support_logs,
    ),
    Check(
        area="Accounts",
        rule="R13",
        page="accounts",
        severity="high",
        promise=lambda dbs: (
            "Inactive accounts are deleted, following notification, after "
            f"{_policy(dbs).account_inactivity_months} months."
        ),
        reality=lambda n: _plural(
            n,
            "account has been inactive longer and has had no notice.",
            "accounts have been inactive longer and have had no notice.",
        ),
        count=_accounts_without_notice,
    ),
    Check(
        area="Accounts",
        rule="R14",
        page="accounts",
        severity="high",
        promise=lambda dbs: (
            f"A notified account is deleted {_policy(dbs).notice_days} days after its notice."
        ),
        reality=lambda n: _plural(
            n,
            "notified account is past its deletion date and still present.",
            "notified accounts are past their deletion date and still present.",
        ),
        count=_accounts_past_deletion,
    ),
    Check(
        area="Invoices",
        rule="R15",
        page="retention",
        severity="medium",
        promise=lambda dbs: (
            f"Invoices are kept {_policy(dbs).invoice_retention_years} years (bokføringsloven §13)."
        ),
        reality=lambda n: _plural(
            n,
            "invoice is past retention and still names a person.",
            "invoices are past retention and still name a person.",
        ),
        count=_invoices,
    ),
    Check(
        area="Usage statistics",
        rule="R22",
        page="consent",
        severity="high",
        promise=lambda dbs: (
            "Usage statistics are collected only with the user's consent (art. 6(1)(a))."
        ),
        reality=lambda n: _plural(
            n,
            "usage session was recorded while the account had not consented.",
            "usage sessions were recorded while the account had not consented.",
        ),
        count=_sessions_without_consent,
    ),
    Check(
        area="Newsletter",
        rule="R22",
        page="consent",
        severity="high",
        promise=lambda dbs: (
            "The newsletter is sent only with the subscriber's consent (art. 6(1)(a))."
        ),
        reality=lambda n: _plural(
            n,
            "subscriber has no granted newsletter consent.",
            "subscribers have no granted newsletter consent.",
        ),
        count=_subscribers_without_consent,
    ),
    Check(
        area="Data-subject requests",
        rule="R8",
        page="requests",
        severity="high",
        promise=lambda dbs: (
            "Requests are answered within "
            f"{_plural(_policy(dbs).dsr_months, 'month', 'months')} (GDPR art. 12(3))."
        ),
        reality=lambda n: _plural(n, "request is overdue.", "requests are overdue."),
        count=_overdue_requests,
    ),
    Check(
        area="Breaches",
        rule="R50",
        page="breaches",
        severity="high",
        promise=lambda dbs: (
            "A personal-data breach is notified to Datatilsynet within 72 hours of becoming "
            "aware of it (art. 33(1))."
        ),
        reality=lambda n: _plural(
            n,
            "breach is past its 72 hours without notification or a decision not to notify.",
            "breaches are past their 72 hours without notification or a decision not to notify.",
        ),
        count=_breach_clocks,
    ),
    Check(
        area="Breaches",
        rule="R51",
        page="breaches",
        severity="high",
        promise=lambda dbs: (
            "Every breach decision is documented with its reasoning (art. 33(5), 34)."
        ),
        reality=lambda n: _plural(
            n,
            "breach has a decision without reasoning.",
            "breaches have a decision without reasoning.",
        ),
        count=_breach_reasoning,
    ),
    Check(
        area="Breaches",
        rule="R53",
        page="breaches",
        severity="medium",
        promise=lambda dbs: (
            "Every personal-data breach is logged (art. 33(5)); a log with no entry for "
            f"{_policy(dbs).breach_log_months} months suggests breaches go unrecorded."
        ),
        reality=lambda n: (
            "No breach has been logged in that period." if n else "Breaches are being logged."
        ),
        count=_quiet_breach_log,
    ),
)
