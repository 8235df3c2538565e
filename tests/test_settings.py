"""config.toml: the policy's numbers, clear errors for malformed files, database URLs from
the environment and demo mode (DESIGN.md "Settings"; RULES.md R41)."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_access.settings import STORES, Policy, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent

ENV_VARS = {
    "users": "DPO_USERS_URL",
    "consent": "DPO_CONSENT_URL",
    "support": "DPO_SUPPORT_URL",
    "ledger": "DPO_LEDGER_URL",
}


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_repository_config_has_the_privacy_policy_numbers():
    settings = load_settings(ROOT / "config.toml", environ={})
    policy = settings.policy
    assert policy.account_inactivity_months == 12  # R13
    assert policy.notice_days == 30  # R13
    assert policy.support_log_months == 6  # R16
    assert policy.invoice_retention_years == 5  # R15
    assert policy.fiscal_year_end_md == (12, 31)  # R15
    assert policy.dsr_months == 1  # R2
    assert policy.dsr_extension_months == 2  # R3
    assert policy.identity_pause_window_days == 3  # R5
    assert policy.hold_review_months == 12  # R17
    assert policy.dpf_check_days == 90  # R32
    assert policy.recipient_review_months == 12  # R32
    assert policy.breach_log_months == 12  # R53
    assert policy.max_rows == 5000
    assert policy == Policy()
    assert settings.letters.controller_name == "Plaato Technologies AS"
    assert settings.policy_facts.recipients == (
        "US payment processor",
        "Google Analytics",
        "Facebook Pixel",
        "Website provider",
    )


def test_empty_config_gives_the_defaults(tmp_path):
    settings = load_settings(write_config(tmp_path, ""), environ={})
    assert settings.policy == Policy()
    assert settings.roles.dpo == ()


def test_policy_value_overrides_default(tmp_path):
    path = write_config(tmp_path, '[policy]\nnotice_days = 45\nfiscal_year_end = "06-30"\n')
    policy = load_settings(path, environ={}).policy
    assert policy.notice_days == 45
    assert policy.fiscal_year_end_md == (6, 30)
    assert policy.account_inactivity_months == 12


def test_r53_the_breach_log_period_is_a_policy_setting(tmp_path):
    policy = load_settings(
        write_config(tmp_path, "[policy]\nbreach_log_months = 6\n"), environ={}
    ).policy
    assert policy.breach_log_months == 6
    with pytest.raises(SettingsError, match="breach_log_months"):
        load_settings(write_config(tmp_path, "[policy]\nbreach_log_months = -1\n"), environ={})


@pytest.mark.parametrize(
    "toml, key, expected_type",
    [
        pytest.param(
            '[policy]\nnotice_days = "thirty"\n', "policy.notice_days", "int", id="str-for-int"
        ),
        pytest.param(
            "[policy]\nnotice_days = 30.0\n", "policy.notice_days", "int", id="float-for-int"
        ),
        pytest.param(
            "[policy]\nnotice_days = true\n", "policy.notice_days", "int", id="bool-for-int"
        ),
        pytest.param(
            "[policy]\nfiscal_year_end = 1231\n", "policy.fiscal_year_end", "str", id="int-for-str"
        ),
        pytest.param('[display]\nmax_rows = "many"\n', "display.max_rows", "int", id="max-rows"),
        pytest.param(
            '[roles]\ndpo = "dpo@plaato.example"\n',
            "roles.dpo",
            "list of strings",
            id="str-for-list",
        ),
        pytest.param(
            "[roles]\nviewer = [1, 2]\n", "roles.viewer", "list of strings", id="ints-in-list"
        ),
        pytest.param('[smtp]\nstarttls = "yes"\n', "smtp.starttls", "bool", id="str-for-bool"),
    ],
)
def test_malformed_value_names_key_and_expected_type(tmp_path, toml, key, expected_type):
    with pytest.raises(SettingsError) as raised:
        load_settings(write_config(tmp_path, toml), environ={})
    assert f"'{key}'" in str(raised.value)
    assert f"must be {expected_type}" in str(raised.value)


@pytest.mark.parametrize(
    "toml, message",
    [
        pytest.param(
            "[policy]\nnotice_days = -1\n", "'policy.notice_days' must be >= 0", id="negative"
        ),
        pytest.param(
            '[policy]\nfiscal_year_end = "13-01"\n',
            "'policy.fiscal_year_end' must be \"MM-DD\"",
            id="month-13",
        ),
        pytest.param(
            '[policy]\nfiscal_year_end = "end"\n',
            "'policy.fiscal_year_end' must be \"MM-DD\"",
            id="not-a-date",
        ),
        pytest.param(
            "[display]\nmax_rows = 0\n", "'display.max_rows' must be >= 1", id="max-rows-zero"
        ),
        pytest.param(
            "[jobs]\nlease_seconds = 0\n",
            "'jobs.lease_seconds' must be from 1 to 86,400, got 0",
            id="lease-zero",
        ),
        pytest.param(
            "[jobs]\nlease_seconds = 86401\n",
            "'jobs.lease_seconds' must be from 1 to 86,400, got 86401",
            id="lease-over-a-day",
        ),
        pytest.param(
            "[jobs]\nlease = 60\n", "[jobs] takes only 'lease_seconds' (int)", id="lease-key"
        ),
    ],
)
def test_out_of_range_values_are_refused(tmp_path, toml, message):
    with pytest.raises(SettingsError) as raised:
        load_settings(write_config(tmp_path, toml), environ={})
    assert message in str(raised.value)


def test_unknown_key_is_named_with_the_known_ones(tmp_path):
    with pytest.raises(SettingsError) as raised:
        load_settings(write_config(tmp_path, "[policy]\nnotice_dayz = 30\n"), environ={})
    assert "unknown key 'policy.notice_dayz'" in str(raised.value)
    assert "notice_days" in str(raised.value)


def test_unknown_section_is_named(tmp_path):
    with pytest.raises(SettingsError) as raised:
        load_settings(write_config(tmp_path, "[retention]\nmonths = 12\n"), environ={})
    assert "unknown section [retention]" in str(raised.value)


def test_unknown_display_key_is_refused(tmp_path):
    with pytest.raises(SettingsError, match=r"\[display\] takes only 'max_rows'"):
        load_settings(write_config(tmp_path, "[display]\ntheme = 'dark'\n"), environ={})


def test_invalid_toml_says_so_with_the_line(tmp_path):
    with pytest.raises(SettingsError) as raised:
        load_settings(write_config(tmp_path, "[policy]\nnotice_days = = 30\n"), environ={})
    assert "not valid TOML" in str(raised.value)
    assert "line 2" in str(raised.value)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "absent.toml", environ={})


def test_job_lease_from_jobs_section_reaches_policy(tmp_path):
    path = write_config(tmp_path, "[jobs]\nlease_seconds = 45\n")
    assert load_settings(path, environ={}).policy.job_lease_seconds == 45
    assert load_settings(write_config(tmp_path, ""), environ={}).policy.job_lease_seconds == 120


def test_max_rows_from_display_section_reaches_policy(tmp_path):
    path = write_config(tmp_path, "[display]\nmax_rows = 250\n")
    assert load_settings(path, environ={}).policy.max_rows == 250


def test_unset_variables_fall_back_to_demo_files_and_demo_mode(tmp_path):
    settings = load_settings(write_config(tmp_path, ""), environ={})
    for store in STORES:
        assert settings.urls[store] == f"sqlite:///{tmp_path / 'data' / f'{store}.sqlite'}"
        assert settings.url_sources[store] == "demo file"
    assert settings.demo_mode is True
    assert settings.pseudonym_key is None


def test_demo_dir_is_relative_to_the_config_file(tmp_path):
    path = write_config(tmp_path, '[databases]\ndemo_dir = "demo-db"\n')
    settings = load_settings(path, environ={})
    assert settings.urls["ledger"] == f"sqlite:///{tmp_path / 'demo-db' / 'ledger.sqlite'}"
    assert settings.demo_mode is True


@pytest.mark.parametrize("store", STORES)
def test_environment_url_overrides_one_store_and_ends_demo_mode(tmp_path, store):
    url = f"postgresql+psycopg://dpo@db.example:5432/{store}"
    settings = load_settings(write_config(tmp_path, ""), environ={ENV_VARS[store]: url})
    assert settings.urls[store] == url
    assert settings.url_sources[store] == f"${ENV_VARS[store]}"
    others = [s for s in STORES if s != store]
    assert all(settings.url_sources[s] == "demo file" for s in others)
    assert settings.demo_mode is False


def test_environment_urls_for_all_four_stores(tmp_path):
    environ = {var: f"mysql+pymysql://dpo@db.example/{s}" for s, var in ENV_VARS.items()}
    environ["DPO_PSEUDONYM_KEY"] = "  s3cret-key  "
    settings = load_settings(write_config(tmp_path, ""), environ=environ)
    assert settings.urls == {s: f"mysql+pymysql://dpo@db.example/{s}" for s in STORES}
    assert settings.demo_mode is False
    assert settings.pseudonym_key == "s3cret-key"


def test_blank_environment_url_counts_as_unset(tmp_path):
    settings = load_settings(write_config(tmp_path, ""), environ={"DPO_USERS_URL": "   "})
    assert settings.url_sources["users"] == "demo file"
    assert settings.demo_mode is True


def test_variable_names_come_from_config(tmp_path):
    path = write_config(tmp_path, '[databases]\nusers_url_env = "ACME_USERS_DB"\n')
    url = "sqlite:////srv/acme/users.sqlite"
    settings = load_settings(path, environ={"ACME_USERS_DB": url, "DPO_USERS_URL": "ignored"})
    assert settings.urls["users"] == url
    assert settings.url_sources["users"] == "$ACME_USERS_DB"
    assert settings.demo_mode is False


def test_r41_roles_match_case_insensitively(tmp_path):
    path = write_config(
        tmp_path, '[roles]\ndpo = ["DPO@Plaato.example"]\nviewer = ["cfo@plaato.example"]\n'
    )
    roles = load_settings(path, environ={}).roles
    assert roles.role_of("  dpo@plaato.EXAMPLE ") == "dpo"
    assert roles.role_of("cfo@plaato.example") == "viewer"
    assert roles.role_of("someone@plaato.example") is None
    assert roles.role_of(None) is None


SECRET = "Hemmelig-9x"
# Every form a database URL can carry a secret in (the userinfo password, a query parameter
# of any case, quoted, repeated, percent-encoded, an unescaped '@' inside the password).
SECRET_URLS = [
    f"postgresql+psycopg://db.example/users?user=dpo&password={SECRET}",
    f"postgresql+psycopg://dpo:{SECRET}@db.example:5432/users",
    f"mysql+pymysql://dpo:{SECRET}@db.example:3306/users?charset=utf8mb4",
    f"postgresql+psycopg://dpo:{SECRET}@x@db.example/users?user=a@b.example",
    "postgresql+psycopg://dpo:Hemmelig%2D9x@db.example/users",
    f"postgresql+psycopg://db.example/users?sslmode=require&sslpassword={SECRET}",
    f"mysql+pymysql://db.example/users?passwd={SECRET}",
    f"mysql+pymysql://db.example/users?PWD={SECRET}",
    f"postgresql+psycopg://db.example/users?password=first&password={SECRET}",
    f"postgresql+psycopg://db.example/users?token={SECRET}&secret={SECRET}",
    f"postgresql+psycopg://db.example/users?api_key={SECRET}",
    f"sqlite:////srv/dpo/users.sqlite?key={SECRET}",
]


@pytest.mark.parametrize("url", SECRET_URLS)
def test_every_secret_in_a_url_is_hidden_and_the_rest_kept(url):
    from data_access.settings import hide_secrets, hide_url_secrets

    shown = hide_url_secrets(url)
    assert SECRET not in shown and "Hemmelig" not in shown
    assert "***" in shown
    assert shown.split("://")[0] == url.split("://")[0]
    assert ("db.example" in shown) == ("db.example" in url)
    message = f"could not connect to {url}: password {SECRET} refused, Hemmelig-9x"
    assert "Hemmelig" not in hide_secrets(message, url)
    # Without the URL, the secret still does not survive inside a URL or a `password=` pair.
    assert "Hemmelig" not in hide_secrets(f"failed: {url}")


@pytest.mark.parametrize("url", SECRET_URLS)
def test_database_descriptions_never_show_a_secret(tmp_path, url):
    settings = load_settings(write_config(tmp_path, ""), environ={"DPO_USERS_URL": url})
    assert "Hemmelig" not in settings.database_description("users")
    assert settings.database_description("users").startswith("$DPO_USERS_URL: ")


KELVIN = "\u212a"  # KELVIN SIGN: lower-cases to the ASCII letter k


@pytest.mark.parametrize(
    "email",
    [
        f"{KELVIN}ari@example.com",  # Kelvin sign for K
        "\uff4bari@example.com",  # full-width k
        "kari@example.\u212bom",  # Angstrom sign
        "\u0130ari@example.com",  # dotted capital I: lower-cases to two characters
        "ka\u200bri@example.com",  # zero-width space
        "kari@example.com\u0000",
    ],
)
def test_r41_look_alike_addresses_get_no_role(tmp_path, email):
    from data_access.settings import email_refusal

    path = write_config(tmp_path, '[roles]\ndpo = ["kari@example.com", "iari@example.com"]\n')
    roles = load_settings(path, environ={}).roles
    assert roles.role_of(email) is None
    assert email_refusal(email)
    assert roles.role_of("KARI@example.COM") == "dpo"


def test_r41_a_look_alike_address_in_roles_is_refused_by_name(tmp_path):
    path = write_config(tmp_path, f'[roles]\nviewer = ["{KELVIN}ari@example.com"]\n')
    with pytest.raises(SettingsError, match=r"'roles.viewer' entry '\\u212aari@example.com'"):
        load_settings(path, environ={})


def test_r41_non_ascii_letters_match_their_own_case_only(tmp_path):
    path = write_config(tmp_path, '[roles]\ndpo = ["bjørn@plaato.example"]\n')
    roles = load_settings(path, environ={}).roles
    assert roles.role_of("BJØRN@plaato.example") == "dpo"
    assert roles.role_of("bjorn@plaato.example") is None
