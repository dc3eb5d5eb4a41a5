"""Settings read from the environment, and SCHEDULE_EXPRESSION in all its forms."""

from __future__ import annotations

import pytest

from fullbay_dagster.defs.settings import SettingsError, load_settings, to_cron


@pytest.mark.parametrize(
    ("expression", "cron"),
    [
        ("rate(1 day)", "0 0 * * *"),
        ("rate(6 hours)", "0 */6 * * *"),
        ("rate(15 minutes)", "*/15 * * * *"),
        ("cron(0 9 ? * MON-FRI *)", "0 9 * * MON-FRI"),
        ("cron(30 6 * * ? *)", "30 6 * * *"),
        ("cron(0 5 ? * 2-6 *)", "0 5 * * MON-FRI"),  # EventBridge 1=SUN .. 7=SAT
        ("cron(0 5 ? * 1,7 *)", "0 5 * * SUN,SAT"),
        ("0 6 * * *", "0 6 * * *"),
        ("  15   4 * * 1  ", "15 4 * * 1"),
    ],
)
def test_schedule_expressions_become_five_field_cron(expression: str, cron: str) -> None:
    assert to_cron(expression) == cron


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(0 days)", "N >= 1"),
        ("rate(2 days)", "cannot be written as cron"),
        ("rate(1 fortnight)", "rate\\(N minutes"),
        ("cron(0 9 * *)", "6 fields"),
        ("cron(0 9 L * ? *)", "L, W and #"),
        ("cron(0 9 * * ? 2027)", "year"),
        ("every day at nine", "5-field cron"),
    ],
)
def test_bad_schedule_expressions_name_the_variable(expression: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        to_cron(expression)
    assert "SCHEDULE_EXPRESSION" in str(caught.value)


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.environment, settings.timezone, settings.start_date) == ("local", "UTC", "2024-01-01")
    assert settings.cron_schedule == "0 0 * * *" and settings.repull_days == 2 and not settings.deployed
    assert load_settings({"ENVIRONMENT": "Production"}).deployed


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FULLBAY_TIMEZONE": "Mars/Olympus"}, "FULLBAY_TIMEZONE"),
        ({"FULLBAY_START_DATE": "2024-13-01"}, "FULLBAY_START_DATE"),
        ({"FULLBAY_REPULL_DAYS": "-1"}, "FULLBAY_REPULL_DAYS"),
        ({"SCHEDULE_EXPRESSION": "cron(bad)"}, "SCHEDULE_EXPRESSION"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL 'verbose' must be one of DEBUG, INFO"),
    ],
)
def test_bad_settings_give_one_clear_message(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)
