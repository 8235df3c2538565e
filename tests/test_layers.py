"""The layer rules of DESIGN.md "Layers", checked on the syntax tree of every module:

- pages/*.py and dashboard.py build no SQL, open no connections and commit nothing;
- data_access/cached.py contains no SQL;
- no other data_access module imports streamlit;
- only data_access/settings.py reads environment variables.

The folders and files checked must exist (a rule that checks nothing fails instead of
passing); the checkers themselves are tested on small sources.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA_ACCESS = ROOT / "data_access"

# Upper-case SQL statements, as written in code; prose such as "Select a row from" does not match.
SQL = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\b[\s\S]*\bSET\b|\bDELETE\s+FROM\b"
)
DATABASE_MODULES = ("sqlalchemy", "sqlite3", "psycopg", "psycopg2", "pymysql", "MySQLdb")
# Calls that open a connection, run a statement or end a transaction.
DATABASE_CALLS = {
    "execute",
    "executemany",
    "executescript",
    "exec_driver_sql",
    "commit",
    "rollback",
    "connect",
    "connection",  # st.connection
    "begin",
    "raw_connection",
    "create_engine",
    "read_sql",
    "read_sql_query",
    "read_sql_table",
    "to_sql",
}
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _top(module: str) -> str:
    return module.split(".")[0]


def sql_strings(source: str) -> list[str]:
    """String literals (f-string parts included) that look like SQL statements."""
    hits = [
        (node.lineno, node.col_offset, node.value.strip()[:60])
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)
    ]
    return [text for _, _, text in sorted(hits)]


def page_findings(source: str) -> list[str]:
    """Why a page or dashboard.py breaks the layer rules (empty when it keeps them)."""
    tree = ast.parse(source)
    found = [f"imports {m}" for m in _imports(tree) if _top(m) in DATABASE_MODULES]
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in DATABASE_CALLS:
                calls.append(
                    (node.lineno, node.col_offset, f"calls {name}() on line {node.lineno}")
                )
    found += [text for _, _, text in sorted(calls)]
    found += [f"contains SQL {s!r}" for s in sql_strings(source)]
    return found


def streamlit_imports(source: str) -> list[str]:
    return [m for m in _imports(ast.parse(source)) if _top(m) == "streamlit"]


def environment_reads(source: str) -> list[str]:
    """`os.environ`, `os.getenv(...)` and `from os import environ/getenv` in a module."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ENVIRONMENT
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            found.append(f"os.{node.attr} on line {node.lineno}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [f"from os import {a.name}" for a in node.names if a.name in ENVIRONMENT]
    return found


def page_files() -> list[Path]:
    """pages/*.py and dashboard.py; AssertionError when they are missing, so that a move
    of the folders cannot turn the layer rules into checks of nothing."""
    files = sorted((ROOT / "pages").rglob("*.py"))
    dashboard = ROOT / "dashboard.py"
    assert files, f"no page under {ROOT / 'pages'}: the layer rules would check nothing"
    assert dashboard.is_file(), f"{dashboard} is missing"
    return [*files, dashboard]


def data_access_files() -> list[Path]:
    """data_access/**/*.py; AssertionError when there is none."""
    files = sorted(DATA_ACCESS.rglob("*.py"))
    assert files, f"no module under {DATA_ACCESS}: the layer rules would check nothing"
    return files


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --- the checkers catch what they should -------------------------------------------------------


def test_page_checker_flags_sql_connections_and_commits():
    source = (
        "import sqlalchemy\n"
        "from sqlalchemy import select\n"
        "import streamlit as st\n"
        "conn = st.connection('users')\n"
        "rows = engine.connect().execute(q)\n"
        "session.commit()\n"
        "query = f'SELECT id FROM accounts WHERE email = {email}'\n"
        "stmt = 'DELETE FROM contacts'\n"
    )
    assert page_findings(source) == [
        "imports sqlalchemy",
        "imports sqlalchemy",
        "calls connection() on line 4",
        "calls connect() on line 5",
        "calls execute() on line 5",
        "calls commit() on line 6",
        "contains SQL 'SELECT id FROM accounts WHERE email ='",
        "contains SQL 'DELETE FROM contacts'",
    ]


def test_page_checker_accepts_a_thin_page():
    source = (
        '"""Retention: select accounts from the list and export them."""\n'
        "import streamlit as st\n"
        "from data_access import cached, export, retention\n"
        "st.title('Retention')\n"
        "frame = cached.accounts_nearing_deletion(as_of, within_days=30)\n"
        "st.dataframe(frame)\n"
        "st.download_button('CSV', export.to_csv_bytes(frame), key='csv')\n"
    )
    assert page_findings(source) == []


def test_environment_checker_finds_every_form():
    source = (
        "import os\n"
        "from os import getenv, path\n"
        "a = os.environ['X']\n"
        "b = os.getenv('Y')\n"
        "c = os.environ.get('Z')\n"
    )
    assert environment_reads(source) == [
        "from os import getenv",
        "os.environ on line 3",
        "os.getenv on line 4",
        "os.environ on line 5",
    ]
    assert environment_reads("import os\np = os.path.join('a', 'b')\n") == []


def test_streamlit_checker():
    assert streamlit_imports(
        "import streamlit as st\nfrom streamlit.testing.v1 import AppTest\n"
    ) == [
        "streamlit",
        "streamlit.testing.v1",
    ]
    assert streamlit_imports("import pandas as pd\n") == []


# --- the project keeps the rules -----------------------------------------------------------------


def test_pages_and_dashboard_build_no_sql_and_open_no_connections():
    findings = {rel(p): page_findings(p.read_text(encoding="utf-8")) for p in page_files()}
    assert {f: v for f, v in findings.items() if v} == {}


def test_cached_module_contains_no_sql():
    cached = DATA_ACCESS / "cached.py"
    assert cached.is_file(), f"{cached} is missing"
    # It may name SQLAlchemy's exceptions (to tell pages a database is down), nothing else.
    findings = page_findings(cached.read_text(encoding="utf-8"))
    assert [f for f in findings if f != "imports sqlalchemy.exc"] == []


def test_data_access_modules_other_than_cached_do_not_import_streamlit():
    files = [p for p in data_access_files() if p != DATA_ACCESS / "cached.py"]
    assert DATA_ACCESS / "settings.py" in files  # the walk found the package
    findings = {rel(p): streamlit_imports(p.read_text(encoding="utf-8")) for p in files}
    assert {f: v for f, v in findings.items() if v} == {}


def test_only_settings_reads_environment_variables():
    files = [p for p in data_access_files() + page_files() if p != DATA_ACCESS / "settings.py"]
    findings = {rel(p): environment_reads(p.read_text(encoding="utf-8")) for p in files}
    assert {f: v for f, v in findings.items() if v} == {}
    assert environment_reads((DATA_ACCESS / "settings.py").read_text(encoding="utf-8")) != []


def test_the_checked_folders_must_exist(monkeypatch, tmp_path):
    """Pointed at a tree without pages/ and data_access/, the file lists fail."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "DATA_ACCESS", tmp_path / "data_access")
    with pytest.raises(AssertionError, match="no page under"):
        page_files()
    with pytest.raises(AssertionError, match="no module under"):
        data_access_files()
    with pytest.raises(AssertionError, match="cached.py is missing"):
        test_cached_module_contains_no_sql()
