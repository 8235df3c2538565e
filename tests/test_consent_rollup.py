"""The consent roll-up equals the direct computation over the events (RULES.md R20, R21):
for random histories and days, after incremental refreshes with late-committed ids and
events older than the subject's latest, after erasures, and after a rebuild. Also, on
SQLite, PostgreSQL and MariaDB: the watermark and awaited ids, the recomputation of a
subject, forgetting a person, the audited rebuild and the pseudonymous ledger rows.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, insert, select, update
from streamlit.testing.v1 import AppTest

from data_access import audit, cached, consent, consent_rollup, retention
from data_access import consent_rollup_build as build_module
from data_access import ledger_tables as lt
from data_access.engines import Databases
from data_access.settings import STORES
from data_access.tables import consent_events
from tests import factories as f
from tests import seeded
from tests.conftest import ROOT, SEED_AS_OF, examples

STATS, NEWS = "usage_statistics", "newsletter"
BASE = datetime(2026, 3, 26, 12, 0)  # Oslo switches to summer time on 2026-03-29
# Subjects as (account_id, email, visitor_id): the R20 key is the first one set.
SUBJECTS = [
    (1, None, None),
    (1, "kari@example.no", None),  # still account:1
    (2, None, "v-2"),
    (None, "kari@example.no", None),
    (None, "Kari@Example.NO", None),  # the same e-mail subject, other case
    (None, "ola@example.no", "v-9"),
    (None, None, "v-1"),
    (None, None, "V-1"),  # visitor ids are not lower-cased: another subject
]

seeded_demo = seeded.seeded_demo


# --- helpers -----------------------------------------------------------------------------


def add_event(dbs, event_id: int, event: dict) -> None:
    """Insert one consent event with an explicit id (a late commit keeps its lower id)."""
    with dbs.consent.begin() as conn:
        conn.execute(insert(consent_events).values(id=event_id, **event))


def event(
    subject=(1, None, None),
    *,
    purpose=STATS,
    action="granted",
    at=BASE,
    source="app",
    notice_version="v1",
) -> dict:
    account_id, email, visitor_id = subject
    return {
        "account_id": account_id,
        "email": email,
        "visitor_id": visitor_id,
        "purpose": purpose,
        "action": action,
        "occurred_at": at,
        "source": source,
        "notice_version": notice_version,
    }


def reset(dbs) -> None:
    """No events and an empty roll-up (one database set serves many examples)."""
    with dbs.consent.begin() as conn:
        conn.execute(delete(consent_events))
    with dbs.ledger.begin() as conn:
        for table in (
            lt.consent_rollup_subjects,
            lt.consent_rollup_recent,
            lt.consent_rollup_days,
            lt.consent_rollup_events,
            lt.consent_rollup_gaps,
        ):
            conn.execute(delete(table))
        conn.execute(
            update(lt.consent_rollup_state)
            .where(lt.consent_rollup_state.c.id == 1)
            .values(status="empty", watermark=0, events_applied=0, build_token=None)
        )


def erase(dbs, subject) -> None:
    """What an erasure does to consent: delete the events of the person's R20 subject
    (`subject_key` of the given columns), then forget that key."""
    key = consent_rollup.subject_key(*subject)
    e = consent_events
    kind, _, value = key.partition(":")
    if kind == "account":
        condition = e.c.account_id == int(value)
    elif kind == "email":
        condition = e.c.account_id.is_(None) & (func.lower(e.c.email) == value.strip())
    else:
        condition = e.c.account_id.is_(None) & e.c.email.is_(None) & (e.c.visitor_id == value)
    with dbs.consent.begin() as conn:
        conn.execute(delete(e).where(condition))
    consent_rollup.forget_subject_keys(dbs, [key])


def erase_email_everywhere(dbs, email: str) -> None:
    """An erasure that deletes every event carrying the e-mail, whatever its subject, and
    tells the roll-up which events went (`forget_events`)."""
    e = consent_events
    condition = func.lower(e.c.email) == email.strip().lower()
    columns = [e.c.id, e.c.account_id, e.c.email, e.c.visitor_id]
    with dbs.consent.begin() as conn:
        rows = [dict(r) for r in conn.execute(select(*columns).where(condition)).mappings()]
        conn.execute(delete(e).where(condition))
    consent_rollup.forget_events(dbs, rows)


def assert_same_answers(dbs, days: list[date]) -> None:
    """Every public consent figure from the roll-up equals the direct computation."""
    for day in days:
        assert_frames_equal(consent.consent_rates(dbs, day), consent._direct_rates(dbs, day))
        for by in consent.BREAKDOWN_BY:
            assert_frames_equal(
                consent.breakdown(dbs, day, by=by), consent._direct_breakdown(dbs, day, by)
            )
    start, end = min(days), max(days)
    assert_frames_equal(
        consent.consent_trend(dbs, start, end), consent._direct_trend(dbs, start, end)
    )
    assert_frames_equal(
        consent.withdrawals(dbs, start, end), consent._direct_withdrawals(dbs, start, end)
    )


def assert_frames_equal(actual, expected) -> None:
    assert list(actual.columns) == list(expected.columns)
    assert rows_of(actual) == rows_of(expected)


def rows_of(frame) -> list[list]:
    """The frame's rows as lists, every missing value (NaN, NA, NaT, None) as None, in one
    conversion: astype, where and to_dict on these small frames took about 8 ms a call, a
    large part of the property test's time."""
    return frame.to_numpy(dtype=object, na_value=None).tolist()


def history_rows(dbs) -> list:
    """The stored subject histories, from the large and the recent table."""
    with dbs.ledger.connect() as conn:
        return [
            *conn.execute(select(lt.consent_rollup_subjects)).all(),
            *conn.execute(select(lt.consent_rollup_recent)).all(),
        ]


def counts(frame, purpose: str) -> tuple[int, int, int]:
    row = frame[frame["purpose"] == purpose].iloc[0]
    return int(row["subjects"]), int(row["granted"]), int(row["withdrawn"])


# --- property: roll-up == direct computation -----------------------------------------------

events_strategy = st.lists(
    st.builds(
        lambda subject, purpose, action, minutes, source, version: event(
            subject,
            purpose=purpose,
            action=action,
            at=BASE + timedelta(minutes=minutes),
            source=source,
            notice_version=version,
        ),
        st.sampled_from(SUBJECTS),
        st.sampled_from([STATS, NEWS]),
        st.sampled_from(["granted", "withdrawn"]),
        # Five days, in steps that land on Oslo midnights (22:00/23:00 UTC) and on ties.
        st.integers(0, 5 * 24 * 4).map(lambda quarter: quarter * 15),
        st.sampled_from(["app", "web", None]),
        st.sampled_from(["v1", "v2", None]),
    ),
    max_size=14,
)


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=events_strategy,
    second=events_strategy,
    third=events_strategy,
    late=st.sets(st.integers(0, 13), max_size=4),
    erased=st.one_of(st.none(), st.sampled_from(SUBJECTS)),
    erased_email=st.one_of(st.none(), st.sampled_from(["kari@example.no", "ola@example.no"])),
    offsets=st.lists(st.integers(-1, 7), min_size=1, max_size=3),
    merge_rows=st.sampled_from([consent_rollup.MERGE_ROWS, 0, 2]),
    # The full build in one read batch and one partition, or in many of both.
    build_sizes=st.sampled_from([(None, None), (2, 1), (3, 4)]),
)
def test_r21_rollup_equals_direct_computation(
    sqlite_dbs, first, second, third, late, erased, erased_email, offsets, merge_rows, build_sizes
):
    dbs = sqlite_dbs
    reset(dbs)
    read_rows, partition_events = build_sizes
    # Recent histories merged into the large table never, after every refresh, or often.
    with (
        mock.patch.object(consent_rollup, "MERGE_ROWS", merge_rows),
        mock.patch.object(build_module, "READ_ROWS", read_rows or build_module.READ_ROWS),
        mock.patch.object(
            build_module, "PARTITION_EVENTS", partition_events or build_module.PARTITION_EVENTS
        ),
    ):
        check_histories(dbs, first, second, third, late, erased, erased_email, offsets)


def check_histories(dbs, first, second, third, late, erased, erased_email, offsets) -> None:
    days = sorted({BASE.date() + timedelta(days=o) for o in offsets})
    ids = iter(range(1, 1000))
    numbered = [(next(ids), e) for e in first]
    # Some of the first batch commit late: their ids stay below ids seen earlier.
    held = [(i, e) for n, (i, e) in enumerate(numbered) if n in late]
    for i, e in numbered:
        if (i, e) not in held:
            add_event(dbs, i, e)
    assert_same_answers(dbs, days)  # the first call builds the roll-up from scratch

    for e in second:  # later ids, any time: older than a subject's latest too
        add_event(dbs, next(ids), e)
    for i, e in held:
        add_event(dbs, i, e)
    assert_same_answers(dbs, days)

    if erased is not None:
        erase(dbs, erased)
        assert_same_answers(dbs, days)
    if erased_email is not None:
        erase_email_everywhere(dbs, erased_email)
        assert_same_answers(dbs, days)
    for e in third:
        add_event(dbs, next(ids), e)
    assert_same_answers(dbs, days)

    assert consent_rollup.rebuild(dbs, actor="dpo@plaato.example").ok
    assert_same_answers(dbs, days)


# --- the incremental path on every backend --------------------------------------------------


def test_r21_late_committed_id_is_awaited_then_applied_once(empty_dbs):
    dbs = empty_dbs
    day = BASE.date()
    add_event(dbs, 1, event((1, None, None)))
    add_event(dbs, 2, event((2, None, None), action="withdrawn"))
    add_event(dbs, 4, event((4, None, None)))  # id 3 is still in another transaction

    assert counts(consent.consent_rates(dbs, day), STATS) == (3, 2, 1)
    assert consent_rollup.status(dbs)["watermark"] == 4
    assert consent_rollup.status(dbs)["awaited"] == 1

    add_event(dbs, 3, event((3, None, None), action="withdrawn"))  # commits after id 4
    refreshed = consent_rollup.refresh(dbs)

    assert (refreshed.applied, refreshed.watermark) == (1, 4)
    assert consent_rollup.status(dbs)["awaited"] == 0
    assert counts(consent.consent_rates(dbs, day), STATS) == (4, 2, 2)
    assert consent_rollup.refresh(dbs).applied == 0  # never applied twice
    assert_same_answers(dbs, [day])


def test_r20_an_older_event_arriving_late_recomputes_the_subject(empty_dbs):
    dbs = empty_dbs
    monday, tuesday = date(2026, 4, 6), date(2026, 4, 7)
    add_event(dbs, 1, event(at=datetime(2026, 4, 6, 9, 0)))
    add_event(dbs, 2, event(action="withdrawn", at=datetime(2026, 4, 7, 9, 0)))
    assert counts(consent.consent_rates(dbs, monday), STATS) == (1, 1, 0)

    # A withdrawal made on Monday evening reaches the database after Tuesday's event.
    add_event(dbs, 3, event(action="withdrawn", at=datetime(2026, 4, 6, 18, 0)))
    add_event(dbs, 4, event(action="granted", at=datetime(2026, 4, 7, 8, 0)))
    refreshed = consent_rollup.refresh(dbs)

    assert refreshed.recomputed == 1
    assert counts(consent.consent_rates(dbs, monday), STATS) == (1, 0, 1)
    # Tuesday: granted 08:00, withdrawn 09:00 (the latest of the day counts).
    assert counts(consent.consent_rates(dbs, tuesday), STATS) == (1, 0, 1)
    assert_same_answers(dbs, [monday, tuesday])


def test_r21_a_refresh_writes_recent_histories_that_a_merge_moves_unchanged(empty_dbs):
    dbs = empty_dbs
    days = [BASE.date(), BASE.date() + timedelta(days=1)]
    add_event(dbs, 1, event((1, None, None), at=BASE))
    add_event(dbs, 2, event((2, None, None), at=BASE))
    consent_rollup.refresh(dbs)  # the first refresh builds: histories in the large table
    # Later events: a new subject, a later event of subject 1, an older one of subject 2.
    add_event(dbs, 3, event((3, None, None), at=BASE))
    add_event(dbs, 4, event((1, None, None), action="withdrawn", at=BASE + timedelta(days=1)))
    add_event(dbs, 5, event((2, None, None), action="withdrawn", at=BASE - timedelta(hours=1)))
    with mock.patch.object(consent_rollup, "MERGE_ROWS", 3):
        consent_rollup.refresh(dbs)
        assert (
            table_rows(dbs, lt.consent_rollup_subjects),
            table_rows(dbs, lt.consent_rollup_recent),
        ) == (2, 3)
        assert_same_answers(dbs, days)
        assert consent_rollup.merge_recent(dbs) == 0  # not above MERGE_ROWS

        # One slice: the recent rows whose refs start with the most frequent hex digit.
        digits = [row.subject_ref[0] for row in history_rows(dbs)[2:]]
        fullest = max(sorted(set(digits)), key=digits.count)
        assert consent_rollup.merge_recent(dbs, at_least=2) == digits.count(fullest)
        assert_same_answers(dbs, days)
        assert consent_rollup.merge_recent(dbs, at_least=0, whole=True) == 3 - digits.count(fullest)

    assert (
        table_rows(dbs, lt.consent_rollup_subjects),
        table_rows(dbs, lt.consent_rollup_recent),
    ) == (3, 0)
    assert counts(consent.consent_rates(dbs, days[1]), STATS) == (3, 2, 1)
    assert_same_answers(dbs, days)
    erase(dbs, (1, None, None))  # forgetting reads and deletes both tables
    assert counts(consent.consent_rates(dbs, days[1]), STATS) == (2, 2, 0)
    assert_same_answers(dbs, days)


def table_rows(dbs, table) -> int:
    with dbs.ledger.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_r12_forgetting_a_person_removes_their_state_and_events(empty_dbs):
    dbs = empty_dbs
    day = BASE.date()
    add_event(dbs, 1, event((None, "Kari@Example.no", None), purpose=NEWS))
    add_event(dbs, 2, event((None, "kari@example.no", None), purpose=STATS, action="withdrawn"))
    add_event(dbs, 3, event((None, "ola@example.no", None), purpose=NEWS, source="web"))
    assert counts(consent.consent_rates(dbs, day), NEWS) == (2, 2, 0)

    erase(dbs, (None, "kari@example.no", None))

    assert counts(consent.consent_rates(dbs, day), NEWS) == (1, 1, 0)
    assert counts(consent.consent_rates(dbs, day), STATS) == (0, 0, 0)
    by_source = consent.breakdown(dbs, day, by="source")
    assert by_source[["purpose", "source", "granted_events"]].to_dict("records") == [
        {"purpose": NEWS, "source": "web", "granted_events": 1}
    ]
    assert_same_answers(dbs, [day])
    assert len(history_rows(dbs)) == 1


def test_r12_forgetting_single_events_keeps_the_rest_of_their_subject(empty_dbs):
    dbs = empty_dbs
    day = BASE.date()
    # Account 5's usage consent was granted by its member kari, then withdrawn by the owner.
    add_event(dbs, 1, event((5, "kari@example.no", None), at=BASE - timedelta(days=2)))
    add_event(dbs, 2, event((5, None, None), action="withdrawn", at=BASE - timedelta(days=1)))
    assert counts(consent.consent_rates(dbs, day), STATS) == (1, 0, 1)

    erase_email_everywhere(dbs, "KARI@example.no")  # deletes event 1 only

    # Account 5 is still a subject, its state from the owner's own event.
    assert counts(consent.consent_rates(dbs, day), STATS) == (1, 0, 1)
    assert counts(consent.consent_rates(dbs, day - timedelta(days=2)), STATS) == (0, 0, 0)
    assert_same_answers(dbs, [day - timedelta(days=2), day])


def test_r14_an_approved_account_deletion_leaves_the_rollup_equal_to_the_events(sqlite_dbs):
    dbs = sqlite_dbs
    account = f.add_account(
        dbs, email="gone@example.no", created_on=date(2021, 3, 1), last_active_on=date(2025, 10, 1)
    )
    f.add_consent_event(
        dbs, purpose=STATS, action="granted", on=date(2025, 6, 1), account_id=account
    )
    f.add_consent_event(dbs, purpose=STATS, action="granted", on=date(2025, 6, 1), account_id=999)
    assert counts(consent.consent_rates(dbs, SEED_AS_OF), STATS) == (2, 2, 0)
    retention.send_deletion_notices(dbs, [account], actor="dpo@plaato.example", as_of=SEED_AS_OF)

    result = retention.approve_deletions(
        dbs, [account], actor="dpo@plaato.example", as_of=date(2026, 12, 29)
    )

    assert result.succeeded == [account]
    assert counts(consent.consent_rates(dbs, SEED_AS_OF), STATS) == (1, 1, 0)
    assert_same_answers(dbs, [date(2025, 6, 1), SEED_AS_OF])


def test_r18_the_rollup_holds_no_email_address(empty_dbs):
    dbs = empty_dbs
    add_event(dbs, 1, event((None, "kari@example.no", None), purpose=NEWS))
    consent_rollup.refresh(dbs)
    rows = history_rows(dbs)
    assert len(rows) == 1
    assert rows[0].subject_ref == consent_rollup.subject_ref(dbs, "email:kari@example.no")
    assert "@" not in "".join(str(v) for v in rows[0])


def test_r21_rebuild_reports_progress_and_is_audited(empty_dbs):
    dbs = empty_dbs
    for i in range(1, 6):
        add_event(dbs, i, event((i, None, None), action="granted" if i % 2 else "withdrawn"))
    seen: list[float] = []

    result = consent_rollup.rebuild(
        dbs, actor="dpo@plaato.example", progress=lambda fraction, _message: seen.append(fraction)
    )

    assert result.succeeded == ["consent roll-up"] and result.failed == {}
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    entry = audit.audit_entries(dbs, action="consent_rollup_rebuild").iloc[0]
    assert (entry["actor"], entry["rule"], entry["store"]) == (
        "dpo@plaato.example",
        "R21",
        "ledger",
    )
    assert entry["counts"] == '{"events":5,"subjects":5}'
    assert counts(consent.consent_rates(dbs, BASE.date()), STATS) == (5, 3, 2)
    assert consent_rollup.status(dbs)["status"] == "ready"


def test_r21_a_second_rebuild_while_one_runs_is_refused(sqlite_dbs):
    dbs = sqlite_dbs
    add_event(dbs, 1, event())
    with dbs.ledger.begin() as conn:
        conn.execute(
            update(lt.consent_rollup_state).values(
                status="building", build_token="other", build_started_at=datetime.now()
            )
        )
    result = consent_rollup.rebuild(dbs, actor="dpo@plaato.example")
    assert result.succeeded == []
    assert "already running" in result.failed["consent roll-up"]
    # Meanwhile the figures come from the events directly.
    assert counts(consent.consent_rates(dbs, BASE.date()), STATS) == (1, 1, 0)


def test_r12_an_erasure_during_a_build_cancels_it(sqlite_dbs, monkeypatch):
    dbs = sqlite_dbs
    add_event(dbs, 1, event((None, "kari@example.no", None), purpose=NEWS))
    from data_access import consent_rollup_build

    original = consent_rollup_build._write_subjects

    def erase_midway(*args, **kwargs):
        erase(dbs, (None, "kari@example.no", None))
        return original(*args, **kwargs)

    monkeypatch.setattr(consent_rollup_build, "_write_subjects", erase_midway)
    result = consent_rollup.rebuild(dbs, actor="dpo@plaato.example")
    monkeypatch.undo()

    assert "emptied during the build" in result.failed["consent roll-up"]
    assert consent_rollup.status(dbs)["status"] == "empty"
    assert counts(consent.consent_rates(dbs, BASE.date()), NEWS) == (0, 0, 0)


# --- the Consent page sees new events without a restart -------------------------------------


def test_r21_consent_page_shows_new_events_on_the_next_run(seeded_demo, monkeypatch, tmp_path):
    # A copy (this test adds events) in demo mode, the page run on its own (it gates itself).
    seeded.copy_demo(seeded_demo.folder, tmp_path)
    for name, value in seeded_demo.environment().items():
        monkeypatch.setenv(name, value.replace(str(seeded_demo.folder), str(tmp_path)))
    monkeypatch.setattr(cached, "CONFIG_PATH", seeded.write_config(tmp_path, tmp_path))
    seeded.pin_today(monkeypatch)

    dbs = Databases.from_urls(
        **{s: f"sqlite:///{tmp_path / f'{s}.sqlite'}" for s in STORES},
        pseudonym_key=seeded.PSEUDONYM_KEY,
    )
    at = AppTest.from_file(str(ROOT / "pages" / "consent.py"), default_timeout=120)
    at.session_state["as_of"] = SEED_AS_OF
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    before = at.dataframe[0].value.set_index("purpose")

    with dbs.consent.connect() as conn:
        top = conn.execute(select(func.max(consent_events.c.id))).scalar_one()
    noon = datetime.combine(SEED_AS_OF, datetime.min.time()) + timedelta(hours=11)
    for n in range(1, 4):
        add_event(
            dbs, top + n, event((None, None, f"new-visitor-{n}"), purpose="marketing", at=noon)
        )
    at.run()

    after = at.dataframe[0].value.set_index("purpose")
    assert after.loc["marketing", "subjects"] == before.loc["marketing", "subjects"] + 3
    assert after.loc["marketing", "granted"] == before.loc["marketing", "granted"] + 3
    direct = consent._direct_rates(dbs, SEED_AS_OF).set_index("purpose")
    assert list(after["subjects"]) == list(direct["subjects"])
    assert list(after["granted"]) == list(direct["granted"])
    dbs.dispose()


demo_copy = seeded.demo_copy


def test_r21_the_rebuild_button_rebuilds_with_progress_and_is_audited(demo_copy):
    at = AppTest.from_file(str(ROOT / "pages" / "consent.py"), default_timeout=120)
    at.session_state["as_of"] = SEED_AS_OF
    at.run()
    assert not at.exception, at.exception
    before = at.dataframe[0].value

    at.button(key="consent_rebuild").click().run()

    assert not at.exception, at.exception
    assert "Rebuild of the consent roll-up: 1 succeeded, 0 failed." in [s.value for s in at.success]
    entry = audit.audit_entries(demo_copy.dbs, action="consent_rollup_rebuild").iloc[0]
    assert entry["actor"] == "demo@localhost"
    assert list(at.dataframe[0].value["subjects"]) == list(before["subjects"])
