"""What is wrong in the breach register (RULES.md R50, R51, R53), counted for the policy
findings (`data_access.findings`): clocks run out without a notification, decisions
recorded without reasoning, and a log with no breach for `policy.breach_log_months`.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, func, or_, select

from data_access import rules
from data_access.breaches.clock import instant_of
from data_access.breaches.records import logged_since, open_breaches
from data_access.engines import Databases
from data_access.ledger_tables import breaches


def clocks_run_out(dbs: Databases, as_of: date | None = None) -> int:
    """Breaches whose 72 hours have passed with no notification and no decision against
    notifying (R50)."""
    return int(open_breaches(dbs, as_of)["overdue"].sum())


def decisions_without_reasoning(dbs: Databases, as_of: date | None = None) -> int:
    """Breaches with a risk assessment, notification decision or decision on telling the
    data subjects that has no reasoning (R51, R52). The dashboard refuses such decisions;
    these come from elsewhere (an import, a direct edit)."""

    def blank(column):
        return or_(column.is_(None), func.trim(column) == "")

    query = select(func.count()).where(
        breaches.c.aware_at <= instant_of(as_of),
        or_(
            and_(breaches.c.risk.is_not(None), blank(breaches.c.risk_reasoning)),
            and_(breaches.c.notify_decision.is_not(None), blank(breaches.c.notify_reasoning)),
            and_(breaches.c.subjects_decision.is_not(None), blank(breaches.c.subjects_reasoning)),
        ),
    )
    with dbs.ledger.connect() as conn:
        return int(conn.execute(query.select_from(breaches)).scalar_one())


def quiet_log(dbs: Databases, as_of: date) -> int:
    """1 when no breach was logged in the `policy.breach_log_months` months up to `as_of`
    (Oslo dates, R53: a log that stays empty suggests breaches go unrecorded), else 0."""
    since = rules.add_months(as_of, -dbs.policy.breach_log_months)
    return 0 if logged_since(dbs, since) else 1
