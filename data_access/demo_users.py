"""Demo rows of the users database: accounts, members, invoices and usage sessions.

Each function yields batches (column name -> array) for `demo_load.StoreWriter`, derived
from the `AccountPlan`; none holds a whole table in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from data_access import rules
from data_access.demo_people import PERSONAL_DOMAINS, STR, join
from data_access.demo_plan import (
    BATCH_ROWS,
    DAY,
    DAY_END,
    NONE,
    AccountPlan,
    Scale,
    between,
    daytime,
    stream,
    to_date64,
    to_datetime64,
)

FEATURES = (
    "brew_log",
    "keg_monitor",
    "airlock_dashboard",
    "recipe_editor",
    "alerts",
    "fermentation_graph",
    "batch_export",
    "settings",
)
FEATURE_WEIGHTS = (0.24, 0.2, 0.2, 0.12, 0.1, 0.08, 0.03, 0.03)


def _nullable(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    out = values.astype(object)
    out[~present] = None
    return out


def _chunks(n: int, size: int) -> Iterator[np.ndarray]:
    for low in range(0, n, size):
        yield np.arange(low, min(n, low + size))


def accounts(plan: AccountPlan) -> Iterator[dict]:
    """`accounts` rows: owners' names and e-mails, professional company and contact person."""
    for idx in _chunks(plan.n, BATCH_ROWS):
        pro = plan.pro[idx]
        yield {
            "id": plan.ids[idx],
            "email": plan.emails(idx),
            "full_name": plan.full_names(idx),
            "account_type": np.where(pro, "professional", "personal"),
            "company_name": _nullable(plan.company_names(idx), pro),
            "contact_person": _nullable(plan.contact_persons(idx), pro),
            "created_at": to_datetime64(plan.created_s[idx]),
            "last_active_at": to_datetime64(plan.owner_last_s[idx]),
        }


def members(plan: AccountPlan, seed: int) -> Iterator[dict]:
    """`account_members` of professional accounts: the first is an admin; in half of the
    accounts a member, not the owner, was the last one active (RULES.md R13)."""
    for number, idx in enumerate(_chunks(plan.n, BATCH_ROWS)):
        batch = _member_chunk(plan, seed, number, idx)
        if len(batch["id"]):
            yield batch


def member_emails(plan: AccountPlan, seed: int, account: int) -> list[str]:
    """The members' e-mails of one account (index), as `members` writes them."""
    number = account // BATCH_ROWS
    idx = np.arange(number * BATCH_ROWS, min(plan.n, (number + 1) * BATCH_ROWS))
    batch = _member_chunk(plan, seed, number, idx)
    return [
        str(e)
        for e, a in zip(batch["email"], batch["account_id"], strict=True)
        if a == plan.ids[account]
    ]


def _member_chunk(plan: AccountPlan, seed: int, number: int, idx: np.ndarray) -> dict:
    pools = plan.pools
    counts = plan.n_members[idx]
    account = np.repeat(idx, counts)
    m = len(account)
    r = stream(seed, "members", number)
    position = np.arange(m) - np.repeat(np.cumsum(counts) - counts, counts)
    ids = plan.member_offset[account] + position + 1
    first = r.integers(0, len(pools.first), m)
    last = r.integers(0, len(pools.last), m)
    personal = np.array(PERSONAL_DOMAINS, dtype=STR)[r.integers(0, 3, m)]
    domain = np.where(r.random(m) < 0.8, pools.company_domains[plan.company[account]], personal)
    email = join(pools.first_ascii[first], ".", pools.last_ascii[last], ".", ids, "@", domain)
    email = np.where(r.random(m) < 0.1, np.strings.title(email), email)
    created_day = between(r, plan.created_day[account], plan.activity_day[account])
    created_s = np.maximum(created_day * DAY + daytime(r, m), plan.created_s[account] + 60)
    latest = plan.member_latest[account] & (position == 0)
    last_day = np.where(
        latest, plan.activity_day[account], between(r, created_day, plan.activity_day[account])
    )
    last_s = np.maximum(last_day * DAY + daytime(r, m), created_s)
    never = ~latest & (r.random(m) < 0.15)
    return {
        "id": ids,
        "account_id": plan.ids[account],
        "full_name": pools.full_names(first, last, np.full(m, -1)),
        "email": email,
        "role": np.where((position == 0) | (r.random(m) < 0.2), "admin", "member"),
        "created_at": to_datetime64(created_s),
        "last_active_at": to_datetime64(np.where(never, NONE, last_s)),
    }


# --- invoices ----------------------------------------------------------------------------------

_PERSONAL_PRICES = np.array([99, 990, 1990, 2490, 3990])  # NOK before VAT
_PERSONAL_P = np.array([0.45, 0.3, 0.1, 0.08, 0.07])


def invoices(plan: AccountPlan, scale: Scale, seed: int) -> Iterator[dict]:
    """`invoices` in issue order across seven financial years (some past RULES.md R15).

    Professional accounts are invoiced about monthly, personal ones for a yearly plan or
    hardware now and then, while active. About 5 % belong to accounts deleted earlier
    (account_id NULL, R14); some of those past retention are already anonymised (names
    NULL). Amounts are NOK including 25 % VAT, in øre."""
    tl, policy = plan.tl, plan.policy
    months = tl.months()
    billed_until = plan.activity_day + 30
    rate = np.where(plan.pro, 1.0, 0.15)
    expected = sum(
        float(rate[(plan.created_day < end) & (billed_until >= start)].sum())
        for start, end in months
    )
    factor = 0.95 * scale.invoices / max(expected, 1.0)
    old_months = [m for m in months if m[1] <= tl.today - 395]
    detached_per_month = 0.05 * scale.invoices / max(len(old_months), 1)
    cutoff = tl.day(
        rules.invoice_issued_cutoff(
            tl.as_of, policy.invoice_retention_years, policy.fiscal_year_end_md
        )
    )
    next_id = 1
    for number, (start, end) in enumerate(months):
        r = stream(seed, "invoices", number)
        active = np.flatnonzero((plan.created_day < end) & (billed_until >= start))
        account = np.repeat(active, r.poisson(rate[active] * factor))
        batch = _account_invoices(plan, r, account, start, end)
        if (start, end) in old_months:
            batch = _concat(
                batch,
                _detached_invoices(plan, r, r.poisson(detached_per_month), start, end, cutoff),
            )
        n = len(batch["issued_day"])
        if n == 0:
            continue
        order = np.lexsort((batch["account_id_sort"], batch["issued_day"]))
        ids = np.arange(next_id, next_id + n)
        next_id += n
        issued = batch["issued_day"][order]
        paid = issued + r.integers(0, 31, n)
        unpaid = (paid > tl.last) | (r.random(n) < 0.01)
        year = tl.date(start).year
        yield {
            "id": ids,
            "invoice_number": join(f"PL{year}-", np.strings.zfill(ids.astype(STR), 8)),
            "account_id": batch["account_id"][order],
            "customer_name": batch["customer_name"][order],
            "contact_person": batch["contact_person"][order],
            "amount": batch["amount"][order],
            "currency": np.full(n, "NOK"),
            "issued_on": to_date64(issued),
            "paid_on": to_date64(np.where(unpaid, NONE, paid)),
        }


def _account_invoices(plan: AccountPlan, r, account: np.ndarray, start: int, end: int) -> dict:
    k = len(account)
    low = np.maximum(plan.created_day[account], start)
    high = np.minimum(np.minimum(plan.activity_day[account] + 30, end - 1), plan.tl.last)
    pro = plan.pro[account]
    personal_price = _PERSONAL_PRICES[r.choice(len(_PERSONAL_PRICES), k, p=_PERSONAL_P)]
    pro_price = 499 * np.maximum(plan.n_members[account], 1) + np.where(r.random(k) < 0.1, 3990, 0)
    ids = plan.ids[account].astype(object)
    return {
        "issued_day": between(r, low, np.maximum(high, low)),
        "account_id": ids,
        "account_id_sort": plan.ids[account],
        "customer_name": np.where(
            pro, plan.company_names(account), plan.full_names(account)
        ).astype(object),
        "contact_person": _nullable(plan.contact_persons(account), pro),
        "amount": np.where(pro, pro_price, personal_price) * 125,
    }


def _detached_invoices(plan: AccountPlan, r, k: int, start: int, end: int, cutoff: int) -> dict:
    """Invoices of accounts deleted before (R14): no account; anonymised once past R15."""
    pools = plan.pools
    day = start + (r.random(k) * (end - start)).astype(np.int64)
    company = r.random(k) < 0.3
    person = pools.full_names(
        r.integers(0, len(pools.first), k), r.integers(0, len(pools.last), k), np.full(k, -1)
    )
    customer = np.where(company, pools.companies[r.integers(0, len(pools.companies), k)], person)
    anonymised = (day <= cutoff) & (r.random(k) < 0.4)
    price = _PERSONAL_PRICES[r.choice(len(_PERSONAL_PRICES), k, p=_PERSONAL_P)]
    return {
        "issued_day": day,
        "account_id": np.full(k, None, dtype=object),
        "account_id_sort": np.zeros(k, dtype=np.int64),
        "customer_name": _nullable(customer, ~anonymised),
        "contact_person": _nullable(person, company & ~anonymised),
        "amount": np.where(company, price * 2, price) * 125,
    }


def _concat(a: dict, b: dict) -> dict:
    return {key: np.concatenate([a[key], b[key]]) for key in a}


# --- usage sessions ---------------------------------------------------------------------------


def sessions(plan: AccountPlan, scale: Scale, seed: int) -> Iterator[dict]:
    """`usage_sessions` recorded while the account's usage-statistics consent was granted,
    ending the day before a withdrawal; the accounts in `plan.leaky` also have 1-5
    sessions while it was not granted (RULES.md R22 findings)."""
    end_of_activity = plan.activity_day * DAY + DAY_END
    granted = plan.usage_grant_s != NONE
    withdrawn = plan.usage_withdraw_s != NONE
    withdraw_day_start = (plan.usage_withdraw_s // DAY) * DAY
    start = plan.usage_grant_s
    end = np.where(withdrawn, np.minimum(withdraw_day_start, end_of_activity), end_of_activity)
    valid = granted & (end > start)
    span_days = np.where(valid, (end - start) / DAY, 0.0)
    leak_start = np.where(withdrawn, withdraw_day_start + DAY, plan.created_s)
    leak_end = np.where(
        plan.usage_regrant_s != NONE,
        np.minimum((plan.usage_regrant_s // DAY) * DAY, end_of_activity),
        end_of_activity,
    )
    leaky = plan.leaky & (leak_end > leak_start)
    rate = max(scale.sessions - 3 * int(leaky.sum()), 0) / max(float(span_days.sum()), 1.0)
    next_id = 1
    for number, idx in enumerate(_chunks(plan.n, BATCH_ROWS // 5)):
        r = stream(seed, "sessions", number)
        ok = np.repeat(idx, r.poisson(rate * span_days[idx]))
        bad = np.repeat(idx, np.where(leaky[idx], r.integers(1, 6, len(idx)), 0))
        started = np.concatenate(
            [
                start[ok] + (r.random(len(ok)) * (end[ok] - start[ok])).astype(np.int64),
                leak_start[bad]
                + (r.random(len(bad)) * (leak_end[bad] - leak_start[bad])).astype(np.int64),
            ]
        )
        account = np.concatenate([ok, bad])
        order = np.lexsort((started, account))
        n = len(order)
        if n == 0:
            continue
        duration = np.clip(r.lognormal(np.log(300), 0.9, n), 5, 7200).astype(np.int64)
        feature = np.array(FEATURES, dtype=object)[r.choice(len(FEATURES), n, p=FEATURE_WEIGHTS)]
        yield {
            "id": np.arange(next_id, next_id + n),
            "account_id": plan.ids[account[order]],
            "started_at": to_datetime64(started[order]),
            "duration_s": duration,
            "feature": feature,
        }
        next_id += n
