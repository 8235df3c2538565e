"""The dashboard's settings: config.toml read into frozen dataclasses.

This is the only module that reads environment variables (DESIGN.md "Layers"). Database
URLs come from the variables config.toml names; an unset variable falls back to the demo
SQLite file under `demo_dir`. `DPO_CONFIG` may name another config.toml (default: the one
beside the code). A malformed file raises `SettingsError` naming the key and the type it
expected.
"""

from __future__ import annotations

import os
import tomllib
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
    dpo: tuple[str, ...] = ()
    viewer: tuple[str, ...] = ()

    def role_of(self, email: str | None) -> str | None:
        """'dpo', 'viewer' or None for an e-mail (case-insensitive)."""
        if not email:
            return None
        email = email.strip().lower()
        if email in {e.lower() for e in self.dpo}:
            return "dpo"
        if email in {e.lower() for e in self.viewer}:
            return "viewer"
        return None


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


@dataclass(frozen=True)
class Letters:
    languages: tuple[str, ...] = ("nb", "en")
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
        """True when every database is the embedded demo SQLite file (RULES.md R41)."""
        return all(self.is_demo_file(s) for s in STORES)

    def not_demo_files(self) -> list[str]:
        """The stores whose URL is not the embedded demo file, in STORES order."""
        return [s for s in STORES if not self.is_demo_file(s)]

    def database_description(self, store: str) -> str:
        """Where `store`'s URL comes from and what it points at, for messages: the variable
        and the kind of database, never the URL itself (a server URL may hold a password)."""
        url = self.urls.get(store, "")
        source = self.url_sources.get(store, "demo file")
        scheme = url.split(":", 1)[0] if ":" in url else ""
        if scheme == "sqlite":
            return f"{source}: the SQLite file {url.removeprefix('sqlite:///') or '(in memory)'}"
        return f"{source}: a {scheme or 'malformed'} URL"


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
