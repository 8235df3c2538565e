"""One object owns every connection: `Databases` (DESIGN.md "Public API").

`dbs.users`, `dbs.consent`, `dbs.support`, `dbs.ledger` are SQLAlchemy Engines; `dbs.policy`
is the `Policy`. A URL that cannot even be parsed does not stop the dashboard: that store's
attribute raises `DatabaseUnavailable` naming the store, and pages that do not need it work.
"""

from __future__ import annotations

import contextlib
import fcntl
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from data_access.audit_chain import KEY_OPTION, derive_audit_key
from data_access.settings import ROOT, STORES, Policy, Settings, hide_secrets, hide_url_secrets
from data_access.tables import SOURCE_METADATA

MIGRATIONS = ROOT / "data_access" / "migrations"
DEMO_KEY_FILE = "pseudonym.key"
_LOCK_NAME = "dpo_dashboard_ledger_migration"


class DatabaseUnavailable(RuntimeError):
    """A store's URL is malformed or its server cannot be reached."""

    def __init__(self, store: str, reason: str):
        super().__init__(f"The {store} database is unavailable: {reason}")
        self.store = store
        self.reason = reason


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the dashboard read while an action writes; the timeout waits out short locks.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    # SQLite enforces foreign keys (and a company's ON DELETE CASCADE) only when asked, per
    # connection; the server databases always do.
    cur.execute("PRAGMA foreign_keys=ON")
    # 64 MiB of page cache (default 2 MiB): the interior pages of a large table's B-tree
    # stay in memory, so a refresh's 100,000 scattered look-ups read mostly leaf pages.
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


def make_engine(url: str, *, create_file: bool = True) -> Engine:
    """An Engine for `url` with the settings each dialect needs. Raises ArgumentError.

    With `create_file` False a SQLite file that does not exist is not created: connecting
    raises OperationalError saying it is missing (a source database belongs to the company;
    an empty new file would hide that it is gone, and every page would show nothing)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        path = sqlite_file(engine)
        if not create_file and path is not None:
            event.listen(engine, "do_connect", _refuse_missing(path))
        return engine
    kwargs: dict = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "mysql":
        kwargs["connect_args"] = {"charset": "utf8mb4", "connect_timeout": 5}
    elif parsed.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 5}
    return create_engine(parsed, **kwargs)


def sqlite_file(engine: Engine) -> Path | None:
    """The file of a SQLite engine (relative to the working directory, as SQLite opens it);
    None for another backend, an in-memory database or a `file:` URI."""
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database)


def _refuse_missing(path: Path):
    def check(_dialect, _record, _cargs, _cparams) -> None:
        if not path.exists():
            raise sqlite3.OperationalError(
                f"the SQLite file {path} does not exist (a source database is never created "
                "empty in its place)"
            )

    return check


def shown_url(url: str) -> str:
    """`url` as pages and logs may show it: every secret hidden (`hide_url_secrets`), or
    "<malformed URL>" when SQLAlchemy cannot parse it (it is then not echoed at all)."""
    try:
        make_url(url)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as "malformed", not echoed
        return "<malformed URL>"
    return hide_url_secrets(url)


def engine_url(engine: Engine) -> str:
    """The URL `engine` was made from, secrets included: only for `hide_secrets`."""
    return engine.url.render_as_string(hide_password=False)


@dataclass
class Databases:
    """The four databases, the policy and the keys. Build with `from_urls` or
    `from_settings`; `create_all()` creates the demo/test source schemas and migrates the ledger.

    `audit_key`: the key of the audit chain's HMAC (`DPO_AUDIT_KEY`); None derives it from
    the pseudonym key (`chain_key`). `anchors_file`: where the chain's anchors are appended
    (RULES.md R18), None for none. `ledger` carries the chain key as an execution option,
    so `audit.append`, which is handed only a connection, hashes with it."""

    engines: dict[str, Engine]
    policy: Policy = field(default_factory=Policy)
    pseudonym_key: bytes = b""  # required: __post_init__ refuses an empty key
    settings: Settings | None = None
    problems: dict[str, str] = field(default_factory=dict)  # store -> why it has no engine
    urls: dict[str, str] = field(default_factory=dict)  # store -> URL with password hidden
    audit_key: bytes | None = None
    anchors_file: Path | None = None

    def __post_init__(self) -> None:
        if not self.pseudonym_key:
            raise PseudonymKeyMissing()
        # A copy per Databases (dataclasses.replace builds a new one), sharing the pool.
        self._keyed_ledger = (
            self.engines["ledger"].execution_options(**{KEY_OPTION: self.chain_key})
            if "ledger" in self.engines
            else None
        )

    @property
    def chain_key(self) -> bytes:
        """The audit chain's key: `audit_key`, else derived from the pseudonym key."""
        return self.audit_key or derive_audit_key(self.pseudonym_key)

    def engine(self, store: str) -> Engine:
        """The Engine of `store`; raises DatabaseUnavailable when its URL was unusable."""
        if store in self.problems:
            raise DatabaseUnavailable(store, self.problems[store])
        return self.engines[store]

    @property
    def users(self) -> Engine:
        return self.engine("users")

    @property
    def consent(self) -> Engine:
        return self.engine("consent")

    @property
    def support(self) -> Engine:
        return self.engine("support")

    @property
    def ledger(self) -> Engine:
        self.engine("ledger")  # raises DatabaseUnavailable for an unusable URL
        return self._keyed_ledger

    @property
    def demo_mode(self) -> bool:
        return bool(self.settings and self.settings.demo_mode)

    @classmethod
    def from_urls(
        cls,
        *,
        users: str,
        consent: str,
        support: str,
        ledger: str,
        policy: Policy | None = None,
        pseudonym_key: bytes | str | None = None,
        settings: Settings | None = None,
        audit_key: bytes | str | None = None,
        anchors_file: Path | str | None = None,
    ) -> Databases:
        """Engines for four SQLAlchemy URLs. A malformed URL is recorded in `problems`.
        `audit_key` and `anchors_file` as the class says. `pseudonym_key` is required
        (raises PseudonymKeyMissing when it is missing or empty): there is no built-in key,
        since a key anyone can read makes pseudonyms reversible (RULES.md R18)."""
        if not pseudonym_key:
            raise PseudonymKeyMissing()
        engines, problems, shown = {}, {}, {}
        for store, url in zip(STORES, (users, consent, support, ledger), strict=True):
            shown[store] = shown_url(url)
            try:
                # Only the ledger is the dashboard's own: it may be created by migrating it.
                engines[store] = make_engine(url, create_file=store == "ledger")
            except Exception as exc:  # noqa: BLE001 - any parse/driver error names the store
                reason = hide_secrets(f"{exc.__class__.__name__}: {exc}", url)
                problems[store] = f"the URL {shown[store]} is not usable ({reason})"
        return cls(
            engines=engines,
            policy=policy or Policy(),
            pseudonym_key=pseudonym_key.encode()
            if isinstance(pseudonym_key, str)
            else pseudonym_key,
            settings=settings,
            problems=problems,
            urls=shown,
            audit_key=audit_key.encode() if isinstance(audit_key, str) else audit_key,
            anchors_file=Path(anchors_file) if anchors_file else None,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Databases:
        """Engines for the URLs in `settings`. Outside demo mode a pseudonym key is required
        (raises PseudonymKeyMissing); demo mode keeps a generated key under demo_dir."""
        key = settings.pseudonym_key
        if key is None:
            if not settings.demo_mode:
                raise PseudonymKeyMissing(settings.databases.pseudonym_key_env)
            key = demo_pseudonym_key(settings.demo_dir)
        return cls.from_urls(
            **{s: settings.urls[s] for s in STORES},
            policy=settings.policy,
            pseudonym_key=key,
            settings=settings,
            audit_key=settings.audit_key,
            anchors_file=settings.anchors_path,
        )

    def create_all(self) -> None:
        """Create the three source schemas (demo and tests) and migrate the ledger to head.

        A missing source SQLite file is created here (and only here: opening one never
        creates it). Source tables that exist are left alone. Raises DatabaseUnavailable or
        SQLAlchemy errors; the ledger migration runs under a lock so two first starts cannot
        race."""
        for store, metadata in SOURCE_METADATA.items():
            path = sqlite_file(self.engine(store))
            if path is not None and not path.exists():
                sqlite3.connect(path).close()
            metadata.create_all(self.engine(store))
        migrate_ledger(self.ledger)

    def dispose(self) -> None:
        for engine in self.engines.values():
            engine.dispose()


class PseudonymKeyMissing(RuntimeError):
    """No pseudonym key: outside demo mode `var` is unset, or a caller of `from_urls` gave
    none (`var` None)."""

    def __init__(self, var: str | None = None):
        if var is None:
            super().__init__(
                "Databases needs a pseudonym_key: the secret key of the keyed hash of "
                "e-mails (RULES.md R18). There is no built-in key; pass your own."
            )
        else:
            super().__init__(
                f"Set the environment variable {var} to a secret key: pseudonyms of e-mails "
                "(RULES.md R18) need it outside demo mode."
            )


def demo_pseudonym_key(demo_dir: Path) -> bytes:
    """The demo key stored in demo_dir, generated on first use."""
    demo_dir.mkdir(parents=True, exist_ok=True)
    path = demo_dir / DEMO_KEY_FILE
    if not path.exists():
        path.write_text(secrets.token_hex(32), encoding="ascii")
        path.chmod(0o600)
    return path.read_text(encoding="ascii").strip().encode()


# --- ledger migrations -------------------------------------------------------------------


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@contextlib.contextmanager
def _migration_lock(engine: Engine, conn):
    """Serialise migrations: advisory lock on servers, a lock file beside a SQLite file."""
    backend = engine.dialect.name
    if backend == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(hashtext(:n))"), {"n": _LOCK_NAME})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": _LOCK_NAME})
    elif backend in ("mysql", "mariadb"):
        conn.execute(text("SELECT GET_LOCK(:n, 120)"), {"n": _LOCK_NAME})
        try:
            yield
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": _LOCK_NAME})
    else:
        database = engine.url.database
        if not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def migrate_ledger(engine: Engine, revision: str = "head") -> None:
    """Upgrade the ledger to `revision` under the migration lock."""
    config = alembic_config()
    with engine.connect() as conn:
        with _migration_lock(engine, conn):
            conn.commit()  # the lock statement must not hold a transaction open
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.commit()
