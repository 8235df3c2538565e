"""Pure date rules (RULES.md R1-R3, R5, R8, R13, R15-R17): tables of hand-worked cases.

Every expected date below was worked out by hand with a calendar and the Norwegian public
holidays of 2026-2028 (Easter 2026-04-05, 2027-03-28, 2028-04-16; Ascension 2026-05-14,
2027-05-06, 2028-05-25; Whit Monday 2026-05-25, 2027-05-17, 2028-06-05), not computed by
the code under test.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_access import clock, rules

D = date.fromisoformat


def case(id_: str, *values):
    return pytest.param(*values, id=id_)


# --- notation: add_months and roll ---------------------------------------------------------


@pytest.mark.parametrize(
    "start, months, expected",
    [
        case("31-jan-plus-1-clamps-to-28-feb", D("2026-01-31"), 1, D("2026-02-28")),
        case("31-jan-plus-1-leap-year-29-feb", D("2028-01-31"), 1, D("2028-02-29")),
        case("29-feb-plus-12-clamps-to-28-feb", D("2028-02-29"), 12, D("2029-02-28")),
        case("31-mar-plus-1-clamps-to-30-apr", D("2026-03-31"), 1, D("2026-04-30")),
        case("31-dec-plus-2-crosses-year", D("2026-12-31"), 2, D("2027-02-28")),
        case("15-mar-plus-0-unchanged", D("2026-03-15"), 0, D("2026-03-15")),
        case("31-mar-minus-1-clamps", D("2026-03-31"), -1, D("2026-02-28")),
    ],
)
def test_notation_add_months_clamps_to_month_end(start, months, expected):
    assert rules.add_months(start, months) == expected


@pytest.mark.parametrize(
    "day, expected",
    [
        case("saturday", D("2026-11-28"), D("2026-11-30")),
        case("sunday", D("2026-11-29"), D("2026-11-30")),
        case("monday-is-itself", D("2026-11-30"), D("2026-11-30")),
        case("maundy-thursday-to-tuesday-after-easter", D("2026-04-02"), D("2026-04-07")),
        case("good-friday", D("2027-03-26"), D("2027-03-30")),
        case("easter-monday", D("2028-04-17"), D("2028-04-18")),
        case("christmas-eve-is-a-working-day", D("2026-12-24"), D("2026-12-24")),
        case("christmas-day-friday", D("2026-12-25"), D("2026-12-28")),
        case("boxing-day-tuesday", D("2028-12-26"), D("2028-12-27")),
        case("new-year-saturday", D("2028-01-01"), D("2028-01-03")),
        case("new-years-eve-friday-is-itself", D("2027-12-31"), D("2027-12-31")),
        case("17-may-and-whit-monday-same-day", D("2027-05-17"), D("2027-05-18")),
        case("ascension-thursday", D("2026-05-14"), D("2026-05-15")),
        case("labour-day-monday", D("2028-05-01"), D("2028-05-02")),
    ],
)
def test_r2_next_working_day_skips_weekends_and_norwegian_holidays(day, expected):
    assert rules.next_working_day(day) == expected


@pytest.mark.parametrize(
    "day, working",
    [
        case("thursday", D("2026-11-26"), True),
        case("saturday", D("2026-11-28"), False),
        case("constitution-day-sunday", D("2026-05-17"), False),
        case("constitution-day-wednesday", D("2028-05-17"), False),
        case("christmas-eve", D("2026-12-24"), True),
        case("whit-monday", D("2026-05-25"), False),
    ],
)
def test_r2_is_working_day(day, working):
    assert rules.is_working_day(day) is working


# --- R1 clock start ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "received_at, received_on",
    [
        case(
            "late-utc-evening-is-next-oslo-day-summer",
            datetime(2026, 3, 31, 23, 30),
            D("2026-04-01"),
        ),
        case("utc-22-in-summer-is-next-oslo-day", datetime(2026, 7, 1, 22, 0), D("2026-07-02")),
        case(
            "utc-22-59-in-winter-is-same-oslo-day", datetime(2026, 1, 15, 22, 59), D("2026-01-15")
        ),
        case("utc-23-in-winter-is-next-oslo-day", datetime(2026, 1, 15, 23, 0), D("2026-01-16")),
    ],
)
def test_r1_received_on_is_the_oslo_date(received_at, received_on):
    assert clock.oslo_date(received_at) == received_on


@pytest.mark.parametrize(
    "day, start_utc, end_utc",
    [
        case("winter-day", D("2026-01-15"), datetime(2026, 1, 14, 23), datetime(2026, 1, 15, 23)),
        case("dst-starts", D("2026-03-29"), datetime(2026, 3, 28, 23), datetime(2026, 3, 29, 22)),
        case("dst-ends", D("2026-10-25"), datetime(2026, 10, 24, 22), datetime(2026, 10, 25, 23)),
    ],
)
def test_r1_oslo_day_bounds_in_utc(day, start_utc, end_utc):
    assert clock.day_start_utc(day) == start_utc
    assert clock.day_end_utc(day) == end_utc


# --- R2 base deadline -----------------------------------------------------------------------

R2_WORKED_EXAMPLES = [
    case("rules-md-31-jan-to-saturday-28-feb", D("2026-01-31"), D("2026-03-02")),
    case("rules-md-31-mar-to-30-apr", D("2026-03-31"), D("2026-04-30")),
    case("rules-md-5-mar-past-easter", D("2026-03-05"), D("2026-04-07")),
]

# At least one case per Norwegian public holiday, and the month-end clamps, over 2026-2028.
R2_CALENDAR = [
    case("new-year-2027-friday", D("2026-12-01"), D("2027-01-04")),
    case("new-year-2028-saturday", D("2027-12-01"), D("2028-01-03")),
    case("maundy-thursday-2026", D("2026-03-02"), D("2026-04-07")),
    case("good-friday-2026", D("2026-03-03"), D("2026-04-07")),
    case("easter-monday-2026", D("2026-03-06"), D("2026-04-07")),
    case("maundy-thursday-2027", D("2027-02-25"), D("2027-03-30")),
    case("easter-sunday-2027", D("2027-02-28"), D("2027-03-30")),
    case("maundy-thursday-2028", D("2028-03-13"), D("2028-04-18")),
    case("easter-monday-2028", D("2028-03-17"), D("2028-04-18")),
    case("1-may-2026-friday", D("2026-04-01"), D("2026-05-04")),
    case("1-may-2027-saturday", D("2027-04-01"), D("2027-05-03")),
    case("1-may-2028-monday", D("2028-04-01"), D("2028-05-02")),
    case("17-may-2026-sunday", D("2026-04-17"), D("2026-05-18")),
    case("17-may-2027-is-whit-monday", D("2027-04-17"), D("2027-05-18")),
    case("17-may-2028-wednesday", D("2028-04-17"), D("2028-05-18")),
    case("ascension-2026", D("2026-04-14"), D("2026-05-15")),
    case("ascension-2027", D("2027-04-06"), D("2027-05-07")),
    case("ascension-2028", D("2028-04-25"), D("2028-05-26")),
    case("whit-monday-2026", D("2026-04-25"), D("2026-05-26")),
    case("whit-monday-2028", D("2028-05-05"), D("2028-06-06")),
    case("christmas-2026-friday", D("2026-11-25"), D("2026-12-28")),
    case("christmas-2028-monday-then-boxing-day", D("2028-11-25"), D("2028-12-27")),
    case("boxing-day-2028-tuesday", D("2028-11-26"), D("2028-12-27")),
    case("boxing-day-2027-sunday", D("2027-11-26"), D("2027-12-27")),
    case("31-jan-2027-to-sunday-28-feb", D("2027-01-31"), D("2027-03-01")),
    case("31-jan-2028-to-leap-day", D("2028-01-31"), D("2028-02-29")),
    case("30-jan-2028-to-leap-day", D("2028-01-30"), D("2028-02-29")),
    case("leap-day-2028-received", D("2028-02-29"), D("2028-03-29")),
    case("31-mar-2027-to-friday-30-apr", D("2027-03-31"), D("2027-04-30")),
    case("31-mar-2028-to-sunday-then-1-may", D("2028-03-31"), D("2028-05-02")),
    case("31-may-2026", D("2026-05-31"), D("2026-06-30")),
    case("31-may-2027", D("2027-05-31"), D("2027-06-30")),
    case("31-aug-2026", D("2026-08-31"), D("2026-09-30")),
    case("31-aug-2028-to-saturday", D("2028-08-31"), D("2028-10-02")),
    case("31-oct-2026", D("2026-10-31"), D("2026-11-30")),
    case("31-oct-2027", D("2027-10-31"), D("2027-11-30")),
    case("31-dec-2026-to-sunday-31-jan", D("2026-12-31"), D("2027-02-01")),
    case("ordinary-weekday", D("2026-06-10"), D("2026-07-10")),
]


@pytest.mark.parametrize("received_on, due_on", R2_WORKED_EXAMPLES + R2_CALENDAR)
def test_r2_base_deadline(received_on, due_on):
    assert rules.dsr_due_date(received_on) == due_on


def test_r2_calendar_table_covers_every_norwegian_public_holiday():
    """The table above lands on (or rolls over) each kind of holiday at least once."""
    import holidays

    landed = set()
    for param in R2_CALENDAR:
        received_on, _ = param.values
        d = rules.add_months(received_on, 1)
        while not rules.is_working_day(d):
            landed.add(d)
            d = date.fromordinal(d.toordinal() + 1)
    names = set()
    for year in (2026, 2027, 2028):
        for day, name in holidays.country_holidays("NO", years=year).items():
            if day in landed:
                names.update(n.strip() for n in name.split(";"))
    assert {
        "New Year's Day",
        "Maundy Thursday",
        "Good Friday",
        "Easter Monday",
        "Labor Day",
        "Constitution Day",
        "Ascension Day",
        "Pentecost Monday",
        "Christmas Day",
        "Second Day of Christmas",
    } <= names
    assert len(R2_CALENDAR) >= 25


def test_r2_policy_months_setting_is_used():
    # A policy of two months instead of one: 2026-01-31 + 2 = 2026-03-31, a Tuesday.
    assert rules.dsr_due_date(D("2026-01-31"), months=2) == D("2026-03-31")


# --- R3 extension ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "received_on, due_on",
    [
        case("rules-md-31-jan-to-30-apr", D("2026-01-31"), D("2026-04-30")),
        case("from-received-not-from-base-deadline", D("2026-03-05"), D("2026-06-05")),
        case("30-nov-to-sunday-28-feb", D("2026-11-30"), D("2027-03-01")),
        case("30-nov-to-leap-day", D("2027-11-30"), D("2028-02-29")),
        case("26-dec-to-sunday", D("2027-12-26"), D("2028-03-27")),
        case("christmas-day-to-maundy-thursday", D("2026-12-25"), D("2027-03-30")),
    ],
)
def test_r3_extended_deadline(received_on, due_on):
    assert rules.dsr_due_date(received_on, extended=True) == due_on


# --- R5 identity pause -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "received_on, extended, paused_days, due_on",
    [
        case("no-pause", D("2026-03-05"), False, 0, D("2026-04-07")),
        case("pause-added-before-rolling", D("2026-03-05"), False, 1, D("2026-04-07")),
        case("three-days-past-easter", D("2026-03-05"), False, 3, D("2026-04-08")),
        case("saturday-plus-two-is-monday", D("2026-01-31"), False, 2, D("2026-03-02")),
        case("pause-lands-on-ascension", D("2026-04-01"), False, 13, D("2026-05-15")),
        case("pause-on-extended-deadline", D("2026-01-31"), True, 5, D("2026-05-05")),
    ],
)
def test_r5_identity_pause_adds_calendar_days_then_rolls(
    received_on, extended, paused_days, due_on
):
    assert rules.dsr_due_date(received_on, extended=extended, paused_days=paused_days) == due_on


def test_r5_negative_pause_is_refused():
    with pytest.raises(ValueError, match="paused_days"):
        rules.dsr_due_date(D("2026-03-05"), paused_days=-1)


# --- R8 badge ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "days_left, overdue, colour",
    [
        case("30-days-green", 30, False, "green"),
        case("10-days-green", 10, False, "green"),
        case("9-days-amber", 9, False, "amber"),
        case("5-days-amber", 5, False, "amber"),
        case("4-days-red", 4, False, "red"),
        case("due-today-red", 0, False, "red"),
        case("overdue-red", -1, True, "red"),
        case("overdue-flag-wins", 15, True, "red"),
        case("unknown-red", None, False, "red"),
    ],
)
def test_r8_badge_boundaries(days_left, overdue, colour):
    assert rules.badge(days_left, overdue) == colour


# --- R13 account inactivity ----------------------------------------------------------------


@pytest.mark.parametrize(
    "last_activity_on, months, eligible_on",
    [
        case("twelve-months", D("2025-06-15"), 12, D("2026-06-15")),
        case("leap-day-clamps", D("2028-02-29"), 12, D("2029-02-28")),
        case("31-aug-plus-6", D("2026-08-31"), 6, D("2027-02-28")),
    ],
)
def test_r13_eligible_on(last_activity_on, months, eligible_on):
    assert rules.account_eligible_on(last_activity_on, months) == eligible_on


@pytest.mark.parametrize(
    "eligible_on, notice_sent_on, notice_days, deletable_on",
    [
        case("late-notice-wins", D("2026-03-10"), D("2026-02-20"), 30, D("2026-03-22")),
        case("early-notice-eligible-wins", D("2026-03-10"), D("2026-01-01"), 30, D("2026-03-10")),
        case(
            "notice-30-days-before-eligible", D("2026-03-10"), D("2026-02-08"), 30, D("2026-03-10")
        ),
        case("notice-on-eligible-day", D("2026-03-10"), D("2026-03-10"), 30, D("2026-04-09")),
        case("notice-days-setting", D("2026-03-10"), D("2026-03-10"), 14, D("2026-03-24")),
    ],
)
def test_r13_deletable_on(eligible_on, notice_sent_on, notice_days, deletable_on):
    assert rules.account_deletable_on(eligible_on, notice_sent_on, notice_days) == deletable_on


@pytest.mark.parametrize(
    "notice_sent_on, last_activity_on, valid",
    [
        case("no-notice", None, D("2025-06-15"), False),
        case("after-activity", D("2026-06-01"), D("2025-06-15"), True),
        case("day-after-activity", D("2025-06-16"), D("2025-06-15"), True),
        case("activity-on-notice-day-voids", D("2026-06-01"), D("2026-06-01"), False),
        case("activity-after-notice-voids", D("2026-06-01"), D("2026-06-20"), False),
    ],
)
def test_r13_notice_validity(notice_sent_on, last_activity_on, valid):
    assert rules.notice_is_valid(notice_sent_on, last_activity_on) is valid


# --- R15 invoices ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issued_on, fiscal_year_end, retained_until",
    [
        case("rules-md-15-mar-2024", D("2024-03-15"), (12, 31), D("2029-12-31")),
        case("first-day-of-year", D("2024-01-01"), (12, 31), D("2029-12-31")),
        case("last-day-of-year", D("2024-12-31"), (12, 31), D("2029-12-31")),
        case("next-year", D("2025-01-01"), (12, 31), D("2030-12-31")),
        case("june-fy-before-end", D("2024-03-15"), (6, 30), D("2029-06-30")),
        case("june-fy-on-end", D("2024-06-30"), (6, 30), D("2029-06-30")),
        case("june-fy-after-end", D("2024-07-01"), (6, 30), D("2030-06-30")),
        case("march-fy", D("2024-12-01"), (3, 31), D("2030-03-31")),
    ],
)
def test_r15_invoice_retained_until_end_of_financial_year_plus_five(
    issued_on, fiscal_year_end, retained_until
):
    assert rules.invoice_retained_until(issued_on, 5, fiscal_year_end) == retained_until


def test_r15_never_five_years_from_invoice_date():
    assert rules.invoice_retained_until(D("2024-03-15")) != D("2029-03-15")


@pytest.mark.parametrize(
    "as_of, fiscal_year_end, cutoff",
    [
        # 2024 invoices are kept through 2029-12-31 and anonymisable from 2030-01-01.
        case("last-day-kept", D("2029-12-31"), (12, 31), D("2023-12-31")),
        case("first-day-past", D("2030-01-01"), (12, 31), D("2024-12-31")),
        case("mid-year", D("2026-11-29"), (12, 31), D("2020-12-31")),
        case("june-fy-on-end-day", D("2030-06-30"), (6, 30), D("2024-06-30")),
        case("june-fy-day-after-end", D("2030-07-01"), (6, 30), D("2025-06-30")),
        case("june-fy-mid-year", D("2030-03-01"), (6, 30), D("2024-06-30")),
    ],
)
def test_r15_invoice_issued_cutoff(as_of, fiscal_year_end, cutoff):
    assert rules.invoice_issued_cutoff(as_of, 5, fiscal_year_end) == cutoff


@given(
    issued_on=st.dates(date(2015, 1, 1), date(2032, 12, 31)),
    as_of=st.dates(date(2020, 1, 1), date(2040, 12, 31)),
    fiscal_year_end=st.sampled_from([(12, 31), (6, 30), (3, 31), (9, 30), (2, 28), (2, 29)]),
)
def test_r15_cutoff_agrees_with_retained_until(issued_on, as_of, fiscal_year_end):
    """`issued_on <= cutoff(as_of)` exactly when the invoice's retention ended before `as_of`."""
    past = rules.invoice_retained_until(issued_on, 5, fiscal_year_end) < as_of
    assert (issued_on <= rules.invoice_issued_cutoff(as_of, 5, fiscal_year_end)) is past


# --- R16 customer-service logs ------------------------------------------------------------


@pytest.mark.parametrize(
    "started_on, retained_until",
    [
        case("mid-month", D("2026-01-15"), D("2026-07-15")),
        case("31-aug-to-28-feb", D("2026-08-31"), D("2027-02-28")),
        case("31-aug-to-leap-day", D("2027-08-31"), D("2028-02-29")),
        case("31-mar-to-30-sep", D("2026-03-31"), D("2026-09-30")),
        case("31-may-to-30-nov", D("2026-05-31"), D("2026-11-30")),
        case("31-oct-to-30-apr", D("2026-10-31"), D("2027-04-30")),
        case("31-dec-to-30-jun", D("2026-12-31"), D("2027-06-30")),
    ],
)
def test_r16_support_contact_retained_six_months_clamped(started_on, retained_until):
    assert rules.support_contact_retained_until(started_on, 6) == retained_until


# --- R17 legal hold review -----------------------------------------------------------------


@pytest.mark.parametrize(
    "placed_on, review_on",
    [
        case("twelve-months", D("2026-01-31"), D("2027-01-31")),
        case("leap-day", D("2028-02-29"), D("2029-02-28")),
    ],
)
def test_r17_hold_review_default(placed_on, review_on):
    assert rules.hold_review_default(placed_on) == review_on
