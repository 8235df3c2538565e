"""The dashboard's settings: config.toml read into frozen dataclasses.

This is the only module that reads environment variables (DESIGN.md "Layers"). Database
URLs come from the variables config.toml names; an unset variable falls back to the demo
SQLite file under `demo_dir`. `DPO_CONFIG` may name another config.toml (default: the one
beside the code). A malformed file raises `SettingsError` naming the key and the type it
expected.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import stat
import tomllib
import unicodedata
import urllib.parse
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any, get_type_hints

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config.toml"
CONFIG_ENV = "DPO_CONFIG"
STORES = ("users", "consent", "support", "ledger")
# Upper bounds of the policy numbers, by the unit their name ends in: far beyond any real
# policy, and low enough that every date computed from them stays within year 9999.
_POLICY_MAX = {"_years": 100, "_months": 1200, "_days": 36_500}
MAX_ROWS_MAX = 1_000_000
JOB_LEASE_MAX = 86_400  # a day: a batch that runs longer has hung


class SettingsError(ValueError):
    """config.toml is malformed: the message names the key and the expected type."""


@dataclass(frozen=True)
class Policy:
    """The privacy policy's numbers (RULES.md: every *default*). Units are in the names."""

    account_inactivity_months: int = 12
    notice_days: int = 30
    support_log_months: int = 6
    invoice_retention_years: int = 5
    fiscal_year_end: str = "12-31"
    dsr_months: int = 1
    dsr_extension_months: int = 2
    identity_pause_window_days: int = 3
    hold_review_months: int = 12
    dpf_check_days: int = 90
    recipient_review_months: int = 12
    duplicate_request_days: int = 30
    # R53: a breach log with no breach logged for this many months is a finding.
    breach_log_months: int = 12
    # Days a backup of the databases is kept before it is overwritten (R12: what an erasure
    # cannot reach at once; the erasure receipt names the date); 0 means no backups are kept.
    backup_retention_days: int = 35
    max_rows: int = 5000
    # Not a policy figure: how long a job's claim lasts without a heartbeat before the job
    # counts as interrupted (its process is gone) and may be resumed ([jobs] lease_seconds).
    job_lease_seconds: int = 120

    @property
    def fiscal_year_end_md(self) -> tuple[int, int]:
        """`fiscal_year_end` as (month, day)."""
        month, day = self.fiscal_year_end.split("-")
        return int(month), int(day)


@dataclass(frozen=True)
class DatabaseSettings:
    users_url_env: str = "DPO_USERS_URL"
    consent_url_env: str = "DPO_CONSENT_URL"
    support_url_env: str = "DPO_SUPPORT_URL"
    ledger_url_env: str = "DPO_LEDGER_URL"
    pseudonym_key_env: str = "DPO_PSEUDONYM_KEY"
    demo_dir: str = "data"


@dataclass(frozen=True)
class Roles:
    """E-mails per role. `deputy`: addresses that receive the daily digest's escalations (a
    red radar item unacknowledged 24 hours after it was first reported); no role by itself."""

    dpo: tuple[str, ...] = ()
    viewer: tuple[str, ...] = ()
    deputy: tuple[str, ...] = ()

    def role_of(self, email: str | None) -> str | None:
        """'dpo', 'viewer' or None for an e-mail, compared by `email_key` (letter case aside,
        the address as written). An address `email_refusal` refuses has no role (RULES.md R41)."""
        if not email or email_refusal(email):
            return None
        key = email_key(email)
        if key in {email_key(e) for e in self.dpo}:
            return "dpo"
        if key in {email_key(e) for e in self.viewer}:
            return "viewer"
        return None


def email_refusal(email: str) -> str | None:
    """Why the (trimmed) address `email` may not be matched against [roles], or None.

    Refused: an address that Unicode NFKC normalisation changes (the Kelvin sign K, a
    full-width letter, a ligature: look-alikes of another address), one whose lower-case form
    has more characters (the dotted capital I), and one with a control or invisible character.
    Every other address lower-cases one character into one, and two such addresses share a
    lower-case form only when they differ in the case of a letter that has exactly one other
    case (checked over all of Unicode): no address folds into somebody else's.
    """
    email = email.strip()
    if unicodedata.normalize("NFKC", email) != email:
        return "it changes under Unicode NFKC normalisation (it may imitate another address)"
    if len(email.lower()) != len(email):
        return "its lower-case form has more characters than it has"
    if any(unicodedata.category(c).startswith("C") for c in email):
        return "it holds a control or invisible character"
    return None


def email_key(email: str) -> str:
    """The form addresses are compared and recorded in: trimmed and lower-cased. Meant for
    addresses `email_refusal` lets through."""
    return email.strip().lower()


@dataclass(frozen=True)
class PolicyFacts:
    recipients: tuple[str, ...] = (
        "US payment processor",
        "Google Analytics",
        "Facebook Pixel",
        "Website provider",
    )
    social_media: tuple[str, ...] = ("Facebook", "YouTube", "Instagram", "LinkedIn")
    consent_purposes: tuple[str, ...] = (
        "usage_statistics",
        "newsletter",
        "website_statistics",
        "marketing",
    )
    policy_text_path: str = ""


# The languages the letters to data subjects are written in (access_letter.py).
LETTER_LANGUAGES = ("nb", "en")


@dataclass(frozen=True)
class Letters:
    # Of LETTER_LANGUAGES, in the order a letter gives them (checked by load_settings).
    languages: tuple[str, ...] = LETTER_LANGUAGES
    controller_name: str = "Plaato Technologies AS"
    controller_contact: str = "privacy@plaato.example"


@dataclass(frozen=True)
class Smtp:
    host: str = ""
    port: int = 25
    sender: str = ""
    username: str = ""
    password_env: str = "DPO_SMTP_PASSWORD"
    starttls: bool = False

    @property
    def configured(self) -> bool:
        return bool(self.host and self.sender)


@dataclass(frozen=True)
class AuditSettings:
    """Where the audit chain is anchored and which variable holds its key (RULES.md R18).

    `anchors_file`: the append-only file anchors go to, relative to config.toml; empty means
    `audit-anchors.log` in demo_dir. Point it at a file the ledger's users cannot rewrite.
    `key_env`: the variable with the chain's HMAC key; unset derives it from the pseudonym key.
    """

    anchors_file: str = ""
    key_env: str = "DPO_AUDIT_KEY"


DEMO_ANCHORS_FILE = "audit-anchors.log"
HORIZON_DAYS_MAX = 366


@dataclass(frozen=True)
class DailySettings:
    """The nightly run and its deadline radar (`python -m data_access.daily`).

    `horizon_days`: the radar lists duties due within this many days of the as-of date
    (Europe/Oslo), and everything overdue. `dashboard_url`: the dashboard's address, for the
    links in the digest e-mail; empty gives page paths without a host.
    """

    horizon_days: int = 14
    dashboard_url: str = ""


@dataclass(frozen=True)
class Settings:
    """Everything config.toml says, plus the database URLs resolved from the environment."""

    policy: Policy = field(default_factory=Policy)
    databases: DatabaseSettings = field(default_factory=DatabaseSettings)
    roles: Roles = field(default_factory=Roles)
    policy_facts: PolicyFacts = field(default_factory=PolicyFacts)
    letters: Letters = field(default_factory=Letters)
    smtp: Smtp = field(default_factory=Smtp)
    audit: AuditSettings = field(default_factory=AuditSettings)
    daily: DailySettings = field(default_factory=DailySettings)
    base_dir: Path = ROOT
    urls: dict[str, str] = field(default_factory=dict)
    url_sources: dict[str, str] = field(default_factory=dict)
    pseudonym_key: str | None = None
    audit_key: str | None = None

    @property
    def anchors_path(self) -> Path:
        """The audit anchor file: `[audit] anchors_file` (relative to config.toml), else
        `audit-anchors.log` in demo_dir."""
        if not self.audit.anchors_file:
            return self.demo_dir / DEMO_ANCHORS_FILE
        return (self.base_dir / self.audit.anchors_file).resolve()

    @property
    def demo_dir(self) -> Path:
        return (self.base_dir / self.databases.demo_dir).resolve()

    def demo_url(self, store: str) -> str:
        return f"sqlite:///{self.demo_dir / f'{store}.sqlite'}"

    def is_demo_file(self, store: str) -> bool:
        """True when `store`'s URL is its embedded demo SQLite file under demo_dir (the
        same file however the path is spelled)."""
        url = self.urls.get(store, "")
        if url == self.demo_url(store):
            return True
        prefix = "sqlite:///"
        if not url.startswith(prefix) or "?" in url:
            return False
        path = Path(url[len(prefix) :])
        if not path.is_absolute():
            path = Path.cwd() / path  # SQLAlchemy opens a relative path from the working dir
        return path.resolve() == (self.demo_dir / f"{store}.sqlite").resolve()

    @property
    def demo_mode(self) -> bool:
        """True when every database is the embedded demo SQLite file and the demo folder
        holds only what the demo generator made there (`demo_files_trusted`; RULES.md R41)."""
        return all(self.is_demo_file(s) for s in STORES) and self.demo_files_trusted()

    def demo_files_trusted(self) -> bool:
        """True when demo_dir is reached without a symbolic link and each demo SQLite file in
        it is a regular file (not a link) carrying the stamp that the generator's marker
        (DEMO_MARKER, written by `demo.generate`) records. A folder with none of the files
        yet (the first start, which generates them) is trusted: it shows nothing.

        So a demo_dir such as `../../srv/real`, a folder of links to real databases, or a
        real database copied over a demo file does not count as demo mode (no sign-in)."""
        configured = self.base_dir / self.databases.demo_dir
        if Path(os.path.abspath(configured)) != self.demo_dir:
            return False  # a symbolic link on the way to the folder
        recorded = _marker_stamp(self.demo_dir / DEMO_MARKER)
        for store in STORES:
            path = self.demo_dir / f"{store}.sqlite"
            if os.path.lexists(path) and (recorded is None or demo_stamp(path) != recorded):
                return False
        return True

    def not_demo_files(self) -> list[str]:
        """The stores whose URL is not the embedded demo file, in STORES order; every store
        when the demo folder holds files the generator did not make (`demo_files_trusted`)."""
        trusted = self.demo_files_trusted()
        return [s for s in STORES if not (trusted and self.is_demo_file(s))]

    def database_description(self, store: str) -> str:
        """Where `store`'s URL comes from and what it points at, for messages: the variable
        and the kind of database, never the URL itself (a server URL may hold a password)."""
        url = self.urls.get(store, "")
        source = self.url_sources.get(store, "demo file")
        scheme = _SCHEME.match(url)
        if scheme and scheme["name"] == "sqlite":
            path = hide_url_secrets(url)[len(scheme[0]) :].removeprefix("/")
            return f"{source}: the SQLite file {path or '(in memory)'}"
        return f"{source}: a {scheme['name'] if scheme else 'malformed'} URL"


# --- the demo generator's marker ----------------------------------------------------------

DEMO_MARKER = "demo-files.json"


def demo_stamp(path: Path) -> int | None:
    """The stamp the demo generator puts in a demo SQLite file (its `PRAGMA application_id`,
    read-only), or None for a path that is not a regular file (a symbolic link is not
    followed) or not a readable SQLite database."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
            return conn.execute("PRAGMA application_id").fetchone()[0]
    except (OSError, sqlite3.Error):
        return None


def demo_marker_text(stamp: int) -> str:
    """The marker the demo generator writes beside the demo files it stamped with `stamp`."""
    return json.dumps({"written_by": "data_access.demo", "application_id": stamp})


def _marker_stamp(path: Path) -> int | None:
    """The stamp a marker records, or None when it is missing, a link or not a marker."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        stamp = json.loads(path.read_text(encoding="utf-8")).get("application_id")
    except (OSError, ValueError, AttributeError):
        return None
    return stamp if isinstance(stamp, int) and stamp != 0 else None


# --- secrets in URLs ---------------------------------------------------------------------

HIDDEN = "***"
_SCHEME = re.compile(r"(?P<name>[A-Za-z][\w+.-]*)://")
# A query or connection-string key whose value is a secret: password, passwd, pwd,
# sslpassword, passphrase, token, secret, api_key, sslkey, credentials... Hiding a harmless
# value (say a key file's path) costs nothing; showing a password costs the database.
_SECRET_NAME = r"[\w.-]*(?:pass|pwd|token|secret|key|credential|auth)[\w.-]*"
_SECRET_PAIR = re.compile(
    rf"(?i)(?P<name>\b{_SECRET_NAME})(?P<sep>\s*=\s*)"
    r"(?P<value>'[^']*'|\"[^\"]*\"|[^\s&;,'\"]+)"
)
# A URL inside free text (a driver's error message): scheme, then anything up to a space.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][\w+.-]*://[^\s'\"<>]*")


def _mask_userinfo(url: str) -> str:
    """`url` with the password of `user:password@host` hidden. The password is taken to end
    at the last '@' before the host's '/' or '?', so an unescaped '@' inside it is hidden
    too (SQLAlchemy would read the rest as the host name)."""
    scheme = _SCHEME.match(url)
    if not scheme:
        return url
    head, rest = url[: scheme.end()], url[scheme.end() :]
    at, colon = rest.find("@"), rest.find(":")
    if at < 0 or not 0 <= colon < at or "/" in rest[:colon]:
        return url
    ends = [i for i in (rest.find("/", at), rest.find("?", at)) if i >= 0]
    last_at = rest.rfind("@", 0, min(ends, default=len(rest)))
    return f"{head}{rest[: colon + 1]}{HIDDEN}{rest[last_at:]}"


def hide_url_secrets(url: str) -> str:
    """`url` as it may be shown or logged: the userinfo password and the value of every
    secret query parameter (`password`, `passwd`, `pwd`, `sslpassword`, `token`, `secret`,
    `key`... any case) replaced by `***`; everything else as written. Never raises.

    >>> hide_url_secrets("postgresql+psycopg://h/x?user=dpo&password=pw")
    'postgresql+psycopg://h/x?user=dpo&password=***'
    """
    return _SECRET_PAIR.sub(_hide_pair, _mask_userinfo(url))


def _hide_pair(match: re.Match) -> str:
    return f"{match['name']}{match['sep']}{HIDDEN}"


def url_secrets(url: str) -> list[str]:
    """The secret values `url` holds (userinfo password, secret query values), as written
    and percent-decoded, longest first: what must never appear in a message about it."""
    found: set[str] = set()
    masked = _mask_userinfo(url)
    if masked != url:
        start = masked.find(HIDDEN)
        password = url[start : len(url) - (len(masked) - start - len(HIDDEN))]
        # SQLAlchemy sends the password up to its first '@' (the rest becomes the host).
        found |= {password, *(part for part in password.split("@") if len(part) >= 3)}
    for match in _SECRET_PAIR.finditer(url):
        found.add(match["value"].strip("'\""))
    decoded = {urllib.parse.unquote_plus(value) for value in found}
    return sorted((v for v in found | decoded if v), key=len, reverse=True)


def hide_secrets(text: str, url: str = "") -> str:
    """`text` (an error message, a log line) with every secret of `url` replaced by `***`,
    and every URL or `password=...` pair inside it masked as `hide_url_secrets` does."""
    for secret in url_secrets(url):
        text = text.replace(secret, HIDDEN)
    text = _URL_IN_TEXT.sub(lambda m: hide_url_secrets(m[0]), text)
    return _SECRET_PAIR.sub(_hide_pair, text)


# --- parsing -----------------------------------------------------------------------------

_SECTIONS = {
    "policy": Policy,
    "display": None,  # max_rows lives on Policy so every data function sees it
    "jobs": None,  # likewise lease_seconds (as job_lease_seconds)
    "databases": DatabaseSettings,
    "roles": Roles,
    "policy_facts": PolicyFacts,
    "letters": Letters,
    "smtp": Smtp,
    "audit": AuditSettings,
    "daily": DailySettings,
}


# Sections whose one key lives on Policy: (section, key, Policy field).
_ON_POLICY = (("display", "max_rows", "max_rows"), ("jobs", "lease_seconds", "job_lease_seconds"))


def _coerce(key: str, value: Any, expected: Any) -> Any:
    """Check one value against its dataclass annotation; tuples of str accept TOML arrays."""
    if expected is bool:
        ok = isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif expected is str:
        ok = isinstance(value, str)
    else:  # tuple[str, ...]
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    if not ok:
        # tuple[str, ...].__name__ is "tuple"; the file author writes a TOML array of strings.
        name = {bool: "bool", int: "int", str: "str"}.get(expected, "list of strings")
        raise SettingsError(
            f"config.toml: '{key}' must be {name}, got {type(value).__name__} {value!r}"
        )
    return value


def _section(name: str, cls: type, raw: dict[str, Any]) -> Any:
    if not isinstance(raw, dict):
        raise SettingsError(f"config.toml: [{name}] must be a table")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise SettingsError(
                f"config.toml: unknown key '{name}.{key}' (known: {', '.join(sorted(known))})"
            )
        values[key] = _coerce(f"{name}.{key}", value, hints[key])
    return cls(**values)


def _check_policy(policy: Policy) -> None:
    if not 1 <= policy.job_lease_seconds <= JOB_LEASE_MAX:
        raise SettingsError(
            f"config.toml: 'jobs.lease_seconds' must be from 1 to {JOB_LEASE_MAX:,}, "
            f"got {policy.job_lease_seconds}"
        )
    for f in fields(Policy):
        value = getattr(policy, f.name)
        if isinstance(value, int) and value < 0:
            raise SettingsError(f"config.toml: 'policy.{f.name}' must be >= 0, got {value}")
        for suffix, most in _POLICY_MAX.items():
            if f.name.endswith(suffix) and value > most:
                raise SettingsError(
                    f"config.toml: 'policy.{f.name}' must be at most {most:,}, got {value}"
                )
    try:
        month, day = policy.fiscal_year_end_md
        # A non-leap year: the financial year must end on a day every year has.
        date(2001, month, day)
    except ValueError:
        raise SettingsError(
            f"config.toml: 'policy.fiscal_year_end' must be \"MM-DD\", got {policy.fiscal_year_end!r}"
        ) from None
    if policy.max_rows < 1:
        raise SettingsError("config.toml: 'display.max_rows' must be >= 1")
    if policy.max_rows > MAX_ROWS_MAX:
        raise SettingsError(
            f"config.toml: 'display.max_rows' must be at most {MAX_ROWS_MAX:,}, "
            f"got {policy.max_rows}"
        )


def _check_letters(letters: Letters) -> None:
    unknown = [lang for lang in letters.languages if lang not in LETTER_LANGUAGES]
    if not letters.languages or unknown or len(set(letters.languages)) < len(letters.languages):
        raise SettingsError(
            "config.toml: 'letters.languages' must list some of "
            f"{', '.join(LETTER_LANGUAGES)}, each once, got {list(letters.languages)}"
        )


def _check_roles(roles: Roles) -> None:
    """An address in [roles] that `email_refusal` refuses could never sign in: say so."""
    for role in ("dpo", "viewer", "deputy"):
        for email in getattr(roles, role):
            refusal = email_refusal(email)
            if refusal:
                raise SettingsError(f"config.toml: 'roles.{role}' entry {ascii(email)}: {refusal}")


def _check_daily(daily: DailySettings) -> None:
    if not 0 <= daily.horizon_days <= HORIZON_DAYS_MAX:
        raise SettingsError(
            f"config.toml: 'daily.horizon_days' must be from 0 to {HORIZON_DAYS_MAX}, "
            f"got {daily.horizon_days}"
        )


def parse_settings(raw: dict[str, Any], *, base_dir: Path = ROOT, environ=None) -> Settings:
    """Settings from an already parsed TOML mapping; `environ` defaults to os.environ."""
    environ = os.environ if environ is None else environ
    for name in raw:
        if name not in _SECTIONS:
            raise SettingsError(
                f"config.toml: unknown section [{name}] (known: {', '.join(sorted(_SECTIONS))})"
            )
    parts = {n: _section(n, c, raw.get(n, {})) for n, c in _SECTIONS.items() if c is not None}
    for section, key, name in _ON_POLICY:
        values = raw.get(section, {})
        if not isinstance(values, dict) or set(values) - {key}:
            raise SettingsError(f"config.toml: [{section}] takes only '{key}' (int)")
        if key in values:
            value = _coerce(f"{section}.{key}", values[key], int)
            parts["policy"] = Policy(**{**parts["policy"].__dict__, name: value})
    _check_policy(parts["policy"])
    _check_roles(parts["roles"])
    _check_daily(parts["daily"])
    _check_letters(parts["letters"])
    settings = Settings(**parts, base_dir=base_dir)
    urls, sources = {}, {}
    for store in STORES:
        var = getattr(settings.databases, f"{store}_url_env")
        value = (environ.get(var) or "").strip()
        urls[store] = value or settings.demo_url(store)
        sources[store] = f"${var}" if value else "demo file"
    key = (environ.get(settings.databases.pseudonym_key_env) or "").strip() or None
    audit_key = (environ.get(settings.audit.key_env) or "").strip() or None
    return Settings(
        **parts,
        base_dir=base_dir,
        urls=urls,
        url_sources=sources,
        pseudonym_key=key,
        audit_key=audit_key,
    )


def config_path(environ=None) -> Path:
    """The config.toml to read: the file `DPO_CONFIG` names, else the one beside the code.
    `environ` defaults to os.environ."""
    environ = os.environ if environ is None else environ
    named = (environ.get(CONFIG_ENV) or "").strip()
    return Path(named) if named else DEFAULT_CONFIG


def load_settings(path: str | os.PathLike = DEFAULT_CONFIG, *, environ=None) -> Settings:
    """Read config.toml at `path`. Raises SettingsError (malformed) or FileNotFoundError."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config.toml is not valid TOML: {exc}") from None
    return parse_settings(raw, base_dir=path.resolve().parent, environ=environ)


def smtp_password(settings: Settings, environ=None) -> str | None:
    """The SMTP password from the environment variable [smtp] names, if set."""
    environ = os.environ if environ is None else environ
    return environ.get(settings.smtp.password_env) or None
