"""Hostile input in search and filter fields (DESIGN.md "Actions"; RULES.md R12, R17, R40).

What a user can type into the dashboard — the subject lookup's e-mail, the audit log's
action filter, the requests filters, a legal hold's e-mail, reason and case reference —
and what config.toml may hold, is driven with SQL metacharacters, very long strings, emoji,
mixed scripts and control characters:

- the search and filter functions answer with rows or the documented ValueError, never
  another exception, and never change a row (every table is fingerprinted before/after);
- `'` and `%` in an e-mail are matched literally, not as SQL or LIKE syntax;
- a legal hold stores hostile text verbatim, or refuses it with a ValueError naming the
  problem and writes nothing; malformed ids get a clear message;
- settings parsing raises only SettingsError;
- no page renders HTML: no unsafe_allow_html, st.html or components, and st.markdown /
  st.write only of constant text.

Hypothesis drives the functions against a small hand-built SQLite database; the fixed list
of hostile strings also runs on PostgreSQL and MariaDB.
"""

from __future__ import annotations

import ast
import hashlib
import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import MetaData, select

from data_access import audit, holds, requests, retention, subjects
from data_access.emails import LONGEST_EMAIL, has_control_characters
from data_access.free_text import MAX_TEXT
from data_access.settings import SettingsError, parse_settings
from pages import _ui as ui
from tests import factories
from tests.conftest import ROOT, examples, make_databases

AS_OF = date(2026, 11, 29)
HOSTILE = [
    "' OR '1'='1",
    "kari@example.no' --",
    "'; DROP TABLE accounts; --",
    'kari@example.no"; DELETE FROM contacts; --',
    "%@%",
    "_@_",
    "k%ri@example.no",
    "kari\\@example.no",
    "😀🍺@øl.no",
    "Ærlig.Østbø@Åsane.no",
    "кари@пример.рф",
    "كاري@مثال.com",
    "𝓚𝓪𝓻𝓲@example.no",
    "<script>alert(1)</script>@example.no",
    '=HYPERLINK("http://x","y")@example.no',
    "[link](javascript:alert(1))@example.no",
    "a" * 5_000 + "@example.no",
    "x@" + "é" * 10_000,
    "   ",
    "@",
    "tab\there@example.no",
]
# The seeded people: their rows are the only ones any lookup may return.
KARI = "kari.nordmann@example.no"
PERCENT = "k%ri@example.no"


def build(dbs) -> None:
    """A small data set: Kari's account, a look-alike whose address holds '%', an account
    named with HTML and a formula, a contact, requests and a hold."""
    kari = factories.add_account(
        dbs, email=KARI, full_name="Kari Nordmann", last_active_on=date(2025, 1, 1)
    )
    factories.add_account(dbs, email=PERCENT, full_name="Per Sentersen")
    factories.add_account(
        dbs,
        email="ola@example.no",
        full_name='<img src=x onerror=alert(1)> =HYPERLINK("http://x","y") 😀',
    )
    factories.add_contact(dbs, started_on=date(2026, 1, 5), email=KARI, account_id=kari)
    factories.add_request(dbs, received_on=date(2026, 11, 2), subject_email=KARI)
    factories.add_request(
        dbs, received_on=date(2026, 11, 20), request_type="erasure", subject_email=PERCENT
    )
    holds.place_hold(
        dbs, email=KARI, reason="Tvist", case_ref="SAK-1", actor="dpo@plaato.example", as_of=AS_OF
    )


_REFLECTED: dict[int, MetaData] = {}


def fingerprint(dbs) -> dict[str, str]:
    """A hash of every row of every table in the four databases, by "store.table"."""
    found = {}
    for store in ("users", "consent", "support", "ledger"):
        engine = dbs.engine(store)
        if id(engine) not in _REFLECTED:
            _REFLECTED[id(engine)] = MetaData()
            _REFLECTED[id(engine)].reflect(engine)
        with engine.connect() as conn:
            for table in _REFLECTED[id(engine)].sorted_tables:
                order = list(table.primary_key.columns) or list(table.columns)
                rows = conn.execute(select(table).order_by(*order)).all()
                found[f"{store}.{table.name}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return found


@pytest.fixture(scope="module")
def small_dbs(tmp_path_factory):
    """The small data set on SQLite, shared by the fuzz tests (they only read, or are refused)."""
    generator = make_databases("sqlite", tmp_path_factory.mktemp("hostile"))
    dbs = next(generator)
    build(dbs)
    yield dbs
    generator.close()


@pytest.fixture
def hostile_dbs(empty_dbs):
    """The small data set on each backend."""
    build(empty_dbs)
    return empty_dbs


FUZZ = settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
texts = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=300))


# --- subject lookup (R12) ------------------------------------------------------------------


def lookup(dbs, entered: str) -> dict | None:
    """find_subject, or None when it refused the input with the documented ValueError."""
    try:
        return subjects.find_subject(dbs, entered)
    except ValueError:
        return None


def found_emails(found: dict) -> set[str]:
    return {e.lower() for e in found["users.accounts"]["email"]}


@FUZZ
@given(entered=texts)
def test_r12_fuzzed_lookup_returns_only_that_address_and_changes_nothing(small_dbs, entered):
    before = fingerprint(small_dbs)

    found = lookup(small_dbs, entered)

    assert fingerprint(small_dbs) == before
    if found is not None:
        assert len(found) == len(subjects.TABLES)
        assert found_emails(found) <= {entered.strip().lower()}


def test_r12_hostile_lookups_on_every_backend_match_literally(hostile_dbs):
    before = fingerprint(hostile_dbs)
    for entered in HOSTILE:
        found = lookup(hostile_dbs, entered)
        if found is None:  # refused with the documented ValueError
            assert (
                entered.strip() in ("", "@")
                or "@" not in entered
                or has_control_characters(entered.strip())
                or len(entered.strip()) > LONGEST_EMAIL
            )
        else:
            # Only the account whose address is literally the input: '%' and '_' are no
            # wildcards, quotes end nothing.
            expected = {PERCENT} if entered == PERCENT else set()
            assert found_emails(found) == expected, entered
    assert fingerprint(hostile_dbs) == before


def test_r12_the_percent_address_finds_only_itself_and_kari_is_still_there(hostile_dbs):
    assert found_emails(subjects.find_subject(hostile_dbs, " K%RI@example.no ")) == {PERCENT}
    kari = subjects.find_subject(hostile_dbs, KARI)
    assert found_emails(kari) == {KARI}
    assert len(kari["support.contacts"]) == 1
    assert len(kari["ledger.legal_holds"]) == 1


def test_r12_an_address_without_at_gets_a_clear_message(small_dbs):
    with pytest.raises(ValueError, match="is not an e-mail address"):
        subjects.find_subject(small_dbs, "' OR '1'='1")
    with pytest.raises(ValueError, match="Enter an e-mail address"):
        subjects.find_subject(small_dbs, "   ")
    # A wall of text with an '@' is refused too, and not echoed in full.
    with pytest.raises(ValueError, match="it has 5,016 characters, at most 254") as refused:
        subjects.find_subject(small_dbs, "kari@" + "x" * 5000 + ".example.no")
    assert len(str(refused.value)) < 200


# --- filters -------------------------------------------------------------------------------


@FUZZ
@given(
    request_type=st.one_of(st.none(), texts),
    status=st.one_of(st.none(), texts, st.sampled_from(list(requests.OPEN_STATUSES))),
    due_within_days=st.one_of(st.none(), st.integers(-(10**6), 10**6)),
)
def test_r8_fuzzed_request_filters_answer_or_refuse_the_status(
    small_dbs, request_type, status, due_within_days
):
    before = fingerprint(small_dbs)
    try:
        frame = requests.open_requests(
            small_dbs,
            AS_OF,
            request_type=request_type,
            status=status,
            due_within_days=due_within_days,
        )
    except ValueError as exc:
        assert status not in requests.OPEN_STATUSES
        assert "status must be one of" in str(exc)
    else:
        assert set(frame["request_type"]) <= (
            {request_type} if request_type else {"access", "erasure"}
        )
        if status:
            assert set(frame["status"]) <= {status}
    assert fingerprint(small_dbs) == before


@FUZZ
@given(action=texts, channel=st.one_of(st.none(), texts))
def test_r40_fuzzed_audit_and_retention_filters_return_rows_and_change_nothing(
    small_dbs, action, channel
):
    before = fingerprint(small_dbs)

    entries = audit.audit_entries(small_dbs, action=action)
    contacts = contacts_past_retention(small_dbs, channel)

    # An empty filter means "all", as on the page.
    assert set(entries["action"]) <= ({action} if action else {"place_hold"})
    if contacts is not None:
        assert set(contacts["channel"]) <= ({channel} if channel else {"chat"})
    assert fingerprint(small_dbs) == before


def contacts_past_retention(dbs, channel):
    """support_contacts_past_retention, or None when it refused an unknown channel with the
    documented ValueError."""
    try:
        return retention.support_contacts_past_retention(dbs, AS_OF, channel=channel)
    except ValueError as exc:
        assert channel is not None and "channel" in str(exc)
        return None


def test_r8_hostile_filters_on_every_backend(hostile_dbs):
    before = fingerprint(hostile_dbs)
    for text in HOSTILE:
        assert requests.open_requests(hostile_dbs, AS_OF, request_type=text).empty, text
        assert audit.audit_entries(hostile_dbs, action=text).empty, text
        contacts = contacts_past_retention(hostile_dbs, text)
        assert contacts is None or contacts.empty, text
        with pytest.raises(ValueError, match="status must be one of"):
            requests.open_requests(hostile_dbs, AS_OF, status=text)
    assert fingerprint(hostile_dbs) == before


# --- legal holds: validation (R17) ---------------------------------------------------------


def hold_count(dbs) -> int:
    return len(holds.all_holds(dbs, AS_OF))


@FUZZ
@given(email=texts, reason=texts, case_ref=texts)
def test_r17_fuzzed_hold_is_stored_verbatim_or_refused_without_a_write(
    small_dbs, email, reason, case_ref
):
    before = fingerprint(small_dbs)
    existing = set(holds.all_holds(small_dbs, AS_OF)["id"])
    try:
        hold_id = holds.place_hold(
            small_dbs,
            email=email,
            reason=reason,
            case_ref=case_ref,
            actor="dpo@plaato.example",
            as_of=AS_OF,
        )
    except ValueError as exc:
        assert str(exc)  # a message for the user
        assert fingerprint(small_dbs) == before
        return
    placed = holds.all_holds(small_dbs, AS_OF).set_index("id").loc[hold_id]
    assert placed["email"] == email.strip().lower()
    assert placed["case_ref"] == case_ref.strip()
    if hold_id in existing:  # the same active hold placed again: nothing written (R17)
        assert fingerprint(small_dbs) == before
    else:
        assert placed["reason"] == reason.strip()


def test_r17_hostile_hold_text_on_every_backend_is_stored_verbatim(hostile_dbs):
    for text in HOSTILE:
        before = hold_count(hostile_dbs)
        refusal = "needs a reason" if not text.strip() else None
        if len(text.strip()) > MAX_TEXT:
            refusal = f"The reason has {len(text.strip()):,} characters; at most {MAX_TEXT:,}"
        if refusal:
            with pytest.raises(ValueError, match=refusal):
                holds.place_hold(
                    hostile_dbs,
                    email=KARI,
                    reason=text,
                    case_ref="SAK-2",
                    actor="dpo@plaato.example",
                    as_of=AS_OF,
                )
            assert hold_count(hostile_dbs) == before
            continue

        hold_id = holds.place_hold(
            hostile_dbs,
            email=KARI,
            reason=text,
            case_ref=text[:100],
            actor="dpo@plaato.example",
            as_of=AS_OF,
        )

        placed = holds.all_holds(hostile_dbs, AS_OF).set_index("id").loc[hold_id]
        assert placed["reason"] == text.strip()
        assert placed["case_ref"] == text[:100].strip()
        assert hold_count(hostile_dbs) == before + 1


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"account_id": "12; DROP TABLE accounts"}, "The account id must be a whole number"),
        ({"account_id": 1.5}, "The account id must be a whole number"),
        ({"account_id": True}, "The account id must be a whole number"),
        ({"contact_id": "7"}, "The contact id must be a whole number"),
        ({"account_id": 999_999}, "There is no account 999999"),
        ({"email": "no-at-sign"}, "is not an e-mail address"),
        ({"email": KARI, "account_id": 1}, "exactly one scope"),
        ({}, "exactly one scope"),
    ],
)
def test_r17_malformed_hold_ids_get_a_clear_message_and_nothing_is_written(
    small_dbs, given, message
):
    before = fingerprint(small_dbs)
    with pytest.raises(ValueError, match=message):
        holds.place_hold(
            small_dbs, reason="Tvist", case_ref="SAK-9", actor="dpo@plaato.example", **given
        )
    assert fingerprint(small_dbs) == before


def test_r17_a_review_date_not_after_as_of_gets_a_clear_message(small_dbs):
    with pytest.raises(ValueError, match="The review date 2026-11-29 must be after 2026-11-29"):
        holds.place_hold(
            small_dbs,
            email=KARI,
            reason="Tvist",
            case_ref="SAK-3",
            review_on=AS_OF,
            actor="dpo@plaato.example",
            as_of=AS_OF,
        )


def test_r17_releasing_a_malformed_hold_id_gets_a_clear_message(small_dbs):
    with pytest.raises(ValueError, match="The hold id must be a whole number, got '1 OR 1=1'"):
        holds.release_hold(small_dbs, "1 OR 1=1", actor="dpo@plaato.example")


# --- settings (config.toml) ----------------------------------------------------------------

toml_scalars = st.one_of(
    st.text(max_size=40),
    st.integers(-(10**20), 10**20),
    st.booleans(),
    st.floats(allow_nan=False),
    st.dates(),
    st.sampled_from(["12-31", "02-29", "02-30", "13-01", "1a-31", "", "06-30"]),
)
toml_values = st.one_of(toml_scalars, st.lists(toml_scalars, max_size=3))
section_keys = st.sampled_from(
    [
        "account_inactivity_months",
        "notice_days",
        "fiscal_year_end",
        "invoice_retention_years",
        "max_rows",
        "dpo",
        "viewer",
        "demo_dir",
        "host",
        "port",
        "unknown",
    ]
)
sections = st.sampled_from(
    ["policy", "display", "roles", "databases", "smtp", "letters", "policy_facts", "other"]
)


@FUZZ
@given(raw=st.dictionaries(sections, st.dictionaries(section_keys, toml_values, max_size=3)))
def test_fuzzed_config_raises_only_settings_error(raw, tmp_path_factory):
    try:
        loaded = parse_settings(raw, base_dir=Path("/nonexistent"), environ={})
    except SettingsError as exc:
        assert str(exc).startswith("config.toml")
        return
    # What parses is usable: every date rule can be computed from it.
    policy = loaded.policy
    month, day = policy.fiscal_year_end_md
    assert date(2001, month, day)
    assert 1 <= policy.max_rows <= 1_000_000


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"policy": {"fiscal_year_end": "02-30"}}, "'policy.fiscal_year_end' must be \"MM-DD\""),
        ({"policy": {"fiscal_year_end": "02-29"}}, "'policy.fiscal_year_end' must be \"MM-DD\""),
        ({"policy": {"notice_days": 10**12}}, "'policy.notice_days' must be at most 36,500"),
        ({"policy": {"invoice_retention_years": 500}}, "must be at most 100"),
        ({"display": {"max_rows": 10**9}}, "'display.max_rows' must be at most 1,000,000"),
        ({"roles": {"dpo": "dpo@plaato.example"}}, "'roles.dpo' must be list of strings"),
    ],
)
def test_malformed_settings_get_a_clear_message(raw, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        parse_settings(raw, environ={})


# --- identity claims -----------------------------------------------------------------------


@FUZZ
@given(
    claims=st.dictionaries(
        st.sampled_from(["email", "email_verified", "sub", "name"]),
        st.one_of(texts, st.booleans(), st.none(), st.integers()),
    )
)
def test_r41_fuzzed_identity_claims_give_a_verified_email_or_a_reason(claims):
    email, problem = ui.verified_email(claims)
    assert (email is None) != (problem is None)
    if email is not None:
        assert email == claims["email"].strip().lower()
        assert (
            claims.get("email_verified", True) in (True, "true", "True", "TRUE")
            or str(claims.get("email_verified")).lower() == "true"
        )


# --- no data value is rendered as HTML -----------------------------------------------------

# Calls that render their text as Markdown: a data value in them must pass through
# ui.escape_markdown, or a name like "[x](http://tracker)" becomes a link or an image.
MARKDOWN_CALLS = {
    "markdown",
    "write",
    "caption",
    "info",
    "warning",
    "error",
    "success",
    "toast",
    "title",
    "header",
    "subheader",
    "empty_state",
    "flash",
}
# Words in an interpolated expression that mark a personal or free-text data value.
DATA_WORDS = {
    "email",
    "name",
    "subject",
    "actor",
    "reason",
    "summary",
    "details",
    "note",
    "phone",
    "location",
    "owner",
    "entered",
    "problem",
}
# System messages and formatted dates, not data values.
NOT_DATA = {"file_name", "isoformat", "describe_problem"}


def calls(path: Path):
    """(line, called name, call node) for every call of a name or attribute in the file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            yield node.lineno, name, node


def unescaped_data(node: ast.Call) -> list[str]:
    """Interpolations in the call's first argument that look like data values and are not
    wrapped in escape_markdown."""
    found = []
    for part in ast.walk(node.args[0]) if node.args else ():
        if not isinstance(part, ast.FormattedValue):
            continue
        value = part.value
        if (
            isinstance(value, ast.Call)
            and getattr(value.func, "attr", getattr(value.func, "id", "")) == "escape_markdown"
        ):
            continue
        source = ast.unparse(value)
        words = set(re.findall(r"[a-z]+", source.lower()))
        if words & DATA_WORDS and not any(safe in source for safe in NOT_DATA):
            found.append(source)
    return found


def html_problems(path: Path) -> list[str]:
    """Every way the file could render HTML or unescaped data Markdown."""
    source = path.read_text(encoding="utf-8")
    problems = []
    if "streamlit.components" in source or "components.v1" in source:
        problems.append("imports streamlit components (raw HTML)")
    for line, name, node in calls(path):
        for keyword in node.keywords:
            harmless = isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            if keyword.arg == "unsafe_allow_html" and not harmless:
                problems.append(f"{line}: unsafe_allow_html")
        if name == "html":
            problems.append(f"{line}: st.html")
        if name in MARKDOWN_CALLS:
            problems += [f"{line}: {name} of {value}" for value in unescaped_data(node)]
    return problems


def test_no_page_renders_html_or_unescaped_data_as_markdown():
    pages = [ROOT / "dashboard.py", *sorted((ROOT / "pages").glob("*.py"))]
    problems = {
        str(path.relative_to(ROOT)): found for path in pages if (found := html_problems(path))
    }
    assert problems == {}


def test_the_html_check_finds_what_it_looks_for(tmp_path):
    # The check above passes because the pages are clean, not because it cannot see.
    page = tmp_path / "page.py"
    page.write_text(
        "import streamlit as st\n"
        "st.markdown(f'<b>{name}</b>', unsafe_allow_html=True)\n"
        "st.html(summary)\n"
        "st.info(f'Nothing held about {email}')\n"
        "st.info(f'Nothing held about {ui.escape_markdown(email)} on {day.isoformat()}')\n"
        "st.caption(f'{len(rows):,} rows')\n",
        encoding="utf-8",
    )
    assert html_problems(page) == [
        "2: unsafe_allow_html",
        "2: markdown of name",
        "3: st.html",
        "4: info of email",
    ]


def test_escape_markdown_shows_data_as_text():
    assert ui.escape_markdown("**Kari** [x](javascript:y) <b>") == (
        "\\*\\*Kari\\*\\* \\[x\\]\\(javascript\\:y\\) \\<b\\>"
    )
    assert ui.escape_markdown(":red[Åse] $x$") == "\\:red\\[Åse\\] \\$x\\$"
