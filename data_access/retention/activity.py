"""Accounts by last activity, counted and listed from indexes (RULES.md R13).

An account's last activity is the latest of its own `created_at` / `last_active_at`
(`tables.own_activity`, indexed as `ix_accounts_own_activity`) and its members'
`last_active_at` (indexed per account). "Last activity before `bound`" is therefore "own
activity before it, and no member active at or after it": a range of the expression index
with one index probe per account, never a scan of the accounts table. Every comparison of
an activity timestamp with a bound is made in `_before` and `_at_or_after`, so a change in
how the bound is compared is made there.

Bounds are naive-UTC instants (`clock.day_end_utc` of an Oslo day); rows come back as the
columns of `ACTIVITY_COLUMNS`, naive UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import and_, case, func, select, tuple_

from data_access import sql_time
from data_access.engines import Databases
from data_access.tables import account_members, accounts, own_activity

ACTIVITY_COLUMNS = [
    "account_id",
    "email",
    "full_name",
    "account_type",
    "created_at",
    "last_active_at",
    "member_last_active_at",
]
_a, _m = accounts, account_members


def _before(value, bound: datetime, dialect: str):
    # On SQLite also right for ISO text with a `T` or an offset (data_access/sql_time).
    return sql_time.before(value, bound, dialect)


def _at_or_after(value, bound: datetime, dialect: str):
    return sql_time.at_or_after(value, bound, dialect)


def _member_active_since(bound: datetime, dialect: str):
    """A member of the account was active at or after `bound` (index probe per account)."""
    return (
        select(_m.c.id)
        .where(_m.c.account_id == _a.c.id, _at_or_after(_m.c.last_active_at, bound, dialect))
        .exists()
    )


def inactive_before(bound: datetime, dialect: str) -> list:
    """WHERE terms: the account's last activity, its members' included, is before `bound`."""
    return [_before(own_activity(), bound, dialect), ~_member_active_since(bound, dialect)]


def count_inactive(dbs: Databases, bounds: Sequence[datetime]) -> list[int]:
    """How many accounts have their last activity before each of `bounds`, in one pass
    over the range of the largest bound."""
    if not bounds:
        return []
    widest = max(bounds)
    dialect = dbs.users.dialect.name
    columns = [
        func.coalesce(
            func.sum(case((and_(*inactive_before(b, dialect)), 1), else_=0))
            if b != widest
            else func.count(),
            0,
        )
        for b in bounds
    ]
    query = select(*columns).select_from(_a).where(*inactive_before(widest, dialect))
    with dbs.users.connect() as conn:
        return [int(v) for v in conn.execute(query).one()]


def activity_select():
    """Accounts with their own and their members' latest activity (naive UTC)."""
    member_last = (
        select(func.max(_m.c.last_active_at)).where(_m.c.account_id == _a.c.id).scalar_subquery()
    )
    return select(
        _a.c.id.label("account_id"),
        _a.c.email,
        _a.c.full_name,
        _a.c.account_type,
        _a.c.created_at,
        _a.c.last_active_at,
        member_last.label("member_last_active_at"),
    )


def walk_inactive(
    dbs: Databases, lower: datetime | None, upper: datetime, batch: int
) -> Iterator[tuple[list[tuple], datetime]]:
    """Accounts whose own activity is in [lower, upper) and whose last activity is before
    `upper`, in (own activity, id) order, `batch` rows at a time (keyset pages of the
    expression index). Yields (rows in ACTIVITY_COLUMNS order, the own activity of the last
    row); an account whose last activity is at or after `lower` only through a member is
    not here (see `member_active_between`)."""
    own = own_activity()
    after = None
    dialect = dbs.users.dialect.name
    with dbs.users.connect() as conn:
        while True:
            where = inactive_before(upper, dialect)
            if lower is not None:
                where.append(_at_or_after(own, lower, dialect))
            if after is not None:
                where.append(tuple_(own, _a.c.id) > tuple_(*after))
            query = activity_select().add_columns(own.label("own")).where(*where)
            rows = conn.execute(query.order_by(own, _a.c.id).limit(batch)).all()
            if not rows:
                return
            after = (rows[-1][-1], rows[-1][0])
            yield [tuple(r[:-1]) for r in rows], rows[-1][-1]
            if len(rows) < batch:
                return


def member_active_between(dbs: Databases, lower: datetime, upper: datetime) -> list[tuple]:
    """Accounts whose own activity is before `lower` and whose last activity, through a
    member, is in [lower, upper): the rows `walk_inactive(lower, upper)` leaves out, found
    from the members' activity index. ACTIVITY_COLUMNS order, by account id."""
    dialect = dbs.users.dialect.name
    members = select(_m.c.account_id).where(
        _at_or_after(_m.c.last_active_at, lower, dialect),
        _before(_m.c.last_active_at, upper, dialect),
    )
    query = (
        activity_select()
        .where(
            _a.c.id.in_(members),
            _before(own_activity(), lower, dialect),
            *inactive_before(upper, dialect),
        )
        .order_by(_a.c.id)
    )
    with dbs.users.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]
