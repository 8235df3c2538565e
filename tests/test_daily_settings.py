"""The daily run's settings: `[daily] horizon_days` and `dashboard_url`, `roles.deputy`."""

from __future__ import annotations

import pytest

from data_access.settings import ROOT, SettingsError, load_settings, parse_settings


def test_defaults_and_the_shipped_config():
    assert parse_settings({}).daily.horizon_days == 14
    shipped = load_settings(ROOT / "config.toml", environ={})
    assert shipped.daily.horizon_days == 14
    assert shipped.daily.dashboard_url == ""
    assert shipped.roles.deputy == ()


def test_daily_section_and_deputy_are_read():
    settings = parse_settings(
        {
            "daily": {"horizon_days": 30, "dashboard_url": "https://dpo.plaato.example"},
            "roles": {"deputy": ["deputy@plaato.example"]},
        },
        environ={},
    )
    assert settings.daily.horizon_days == 30
    assert settings.daily.dashboard_url == "https://dpo.plaato.example"
    assert settings.roles.deputy == ("deputy@plaato.example",)
    assert settings.roles.role_of("deputy@plaato.example") is None  # no role by itself


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"daily": {"horizon_days": -1}}, "'daily.horizon_days' must be from 0 to 366"),
        ({"daily": {"horizon_days": 400}}, "'daily.horizon_days' must be from 0 to 366"),
        ({"daily": {"horizon_days": "14"}}, "'daily.horizon_days' must be int"),
        ({"daily": {"horizon": 14}}, "unknown key 'daily.horizon'"),
        ({"roles": {"deputy": ["\u212aari@plaato.example"]}}, "'roles.deputy' entry"),
    ],
)
def test_bad_daily_settings_are_refused_with_the_key(raw, message):
    with pytest.raises(SettingsError, match=message):
        parse_settings(raw, environ={})
