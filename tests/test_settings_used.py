"""Every setting the documentation names is read by the product: each key of config.toml
(its commented-out [smtp] section included) and of the README's configuration table is
accessed somewhere in data_access/, pages/ or dashboard.py (not only declared in
settings.py). A documented key nothing reads promises behaviour that does not exist."""

from __future__ import annotations

import ast
import dataclasses
import re
import tomllib
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from data_access import access_letter, register, requests, settings
from data_access.settings import Letters, Policy
from tests import seeded
from tests.conftest import SEED_AS_OF

seeded_demo = seeded.seeded_demo
demo_copy = seeded.demo_copy

ROOT = Path(__file__).resolve().parent.parent
# Keys of sections that live on Policy under another name (settings._ON_POLICY).
ON_POLICY = {f"{section}.{key}": name for section, key, name in settings._ON_POLICY}
# Keys read by a name built at run time: the pattern that builds it.
BUILT_NAMES = {
    "databases.users_url_env": "_url_env",
    "databases.consent_url_env": "_url_env",
    "databases.support_url_env": "_url_env",
    "databases.ledger_url_env": "_url_env",
}
README_KEY = re.compile(r"^\| `([a-z_]+\.[a-z_]+)` \|", re.MULTILINE)


def documented_keys() -> set[str]:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    # The optional [smtp] section is documented commented out: read it as if it were not.
    uncommented = re.sub(r"^# (\[smtp\]|[a-z_]+ = )", r"\1", text, flags=re.MULTILINE)
    parsed = tomllib.loads(uncommented)
    keys = {f"{section}.{key}" for section, values in parsed.items() for key in values}
    readme = set(README_KEY.findall((ROOT / "README.md").read_text(encoding="utf-8")))
    return keys | readme


def _product_trees() -> list[ast.Module]:
    files = [ROOT / "dashboard.py", *(ROOT / "pages").rglob("*.py")]
    files += (ROOT / "data_access").rglob("*.py")
    return [ast.parse(path.read_text(encoding="utf-8")) for path in files]


def _read_names() -> tuple[set[str], set[str]]:
    """Attribute names accessed anywhere in the product, and string pieces of f-strings."""
    attributes, pieces = set(), set()
    for tree in _product_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                attributes.add(node.attr)
            elif isinstance(node, ast.JoinedStr):
                pieces |= {v.value for v in node.values if isinstance(v, ast.Constant)}
    return attributes, pieces


def test_the_documentation_names_the_settings_it_should():
    keys = documented_keys()
    assert {"policy.notice_days", "smtp.host", "policy_facts.consent_purposes"} <= keys
    assert "letters.languages" in keys


def test_every_documented_setting_is_read_somewhere():
    attributes, pieces = _read_names()
    unread = []
    for key in sorted(documented_keys()):
        if key in BUILT_NAMES:
            if BUILT_NAMES[key] not in pieces:
                unread.append(key)
            continue
        name = ON_POLICY.get(key, key.split(".", 1)[1])
        if name not in attributes:
            unread.append(key)
    assert unread == []


# --- the settings that were documented but read nowhere --------------------------------


def _letter(languages: tuple[str, ...]) -> dict:
    return access_letter.letter_blocks(
        email="kari@example.no",
        name="Kari Nordmann",
        as_of=date(2026, 11, 29),
        row_counts={"users.accounts": 1},
        recipients=[],
        activities=[],
        policy=Policy(),
        letters=Letters(languages=languages),
    )


def test_letters_languages_decides_the_access_letters_languages_and_order():
    english = _letter(("en",))
    both = _letter(("en", "nb"))

    assert list(english) == ["en"]
    assert list(both) == ["en", "nb"]
    html = access_letter.to_html(english, title="Innsyn")
    assert '<section lang="en">' in html and 'lang="nb"' not in html
    assert access_letter.to_markdown(both).startswith("<!-- English -->")


def test_an_unknown_or_repeated_letter_language_is_refused(tmp_path):
    path = tmp_path / "config.toml"
    for languages in ('["de"]', "[]", '["nb", "nb"]'):
        path.write_text(f"[letters]\nlanguages = {languages}\n", encoding="utf-8")
        with pytest.raises(settings.SettingsError, match="letters.languages"):
            settings.load_settings(path, environ={})


def test_policy_text_path_is_read_relative_to_config_toml(tmp_path):
    (tmp_path / "policy.txt").write_text("Personvernerklæring\n", encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text('[policy_facts]\npolicy_text_path = "policy.txt"\n', encoding="utf-8")
    loaded = settings.load_settings(path, environ={})
    dbs = SimpleNamespace(settings=loaded)
    assert register.policy_text(dbs) == "Personvernerklæring\n"
    missing = dataclasses.replace(
        loaded, policy_facts=dataclasses.replace(loaded.policy_facts, policy_text_path="gone.txt")
    )
    with pytest.raises(FileNotFoundError):
        register.policy_text(SimpleNamespace(settings=missing))
    empty = dataclasses.replace(loaded, policy_facts=settings.PolicyFacts())
    assert register.policy_text(SimpleNamespace(settings=empty)) is None


def test_r23_a_withdrawal_may_name_only_the_configured_consent_purposes(demo_copy):
    facts = settings.PolicyFacts(consent_purposes=("newsletter",))
    dbs = dataclasses.replace(demo_copy.dbs, settings=settings.Settings(policy_facts=facts))
    queue = requests.open_requests(dbs, SEED_AS_OF, request_type="withdraw_consent")
    rid = int(queue["request_id"].iloc[0])
    actor = "dpo@plaato.example"
    requests.request_identity(dbs, rid, actor=actor, as_of=SEED_AS_OF)
    requests.confirm_identity(
        dbs, rid, method="Reply from the address", actor=actor, as_of=SEED_AS_OF
    )

    refused = requests.complete_request(
        dbs, rid, actor=actor, as_of=SEED_AS_OF, purposes=["marketing"]
    )
    done = requests.complete_request(
        dbs, rid, actor=actor, as_of=SEED_AS_OF, purposes=["newsletter"]
    )

    assert "unknown: marketing. Purposes: newsletter." in refused.failed[rid]
    assert done.succeeded == [rid]
