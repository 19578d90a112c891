"""The create-a-source form: the model's own messages beside each field."""

import pytest
from pydantic import ValidationError

from ingress.console.forms import GENERAL, FormProblem, field_errors, parse_status_map, read_form
from schemas.source import SourceConfig


def errors_for(form: dict[str, str], pass_through: list[str] | None = None) -> dict[str, str]:
    values = read_form(form, pass_through or []).values | {"api_key": "k" * 32}
    with pytest.raises(ValidationError) as error:
        SourceConfig.model_validate(values)
    return field_errors(error.value)


def test_a_good_form_makes_a_source() -> None:
    form = read_form(
        {
            "id": "acme",
            "exchange_rate": "1.08",
            "currency": "usd",
            "accounts_url": "https://accounts.zoho.eu",
            "default_country": "de",
            "status_map": "Leads: Contacted = Lead\nDeals: Closed Won = ",
            "verify": "",
        },
        ["city"],
    )
    source = SourceConfig.model_validate(form.values | {"api_key": "k" * 32})
    assert (source.currency, source.default_country, source.pass_through) == (
        "USD",
        "DE",
        ("city",),
    )
    assert source.status_map["Leads"] == {"Contacted": "Lead"}
    assert source.accounts_url == "https://accounts.zoho.eu"


def test_each_bad_field_gets_the_models_message() -> None:
    errors = errors_for({"id": "no spaces", "exchange_rate": "-1", "currency": "XXQ"})
    assert set(errors) == {"id", "exchange_rate", "currency"}
    assert "ISO 4217" in errors["currency"]
    assert "greater than 0" in errors["exchange_rate"]


def test_a_rule_across_fields_is_shown_above_the_form() -> None:
    errors = errors_for({"id": "a", "exchange_rate": "1", "currency": "EUR", "verify": "on"})
    assert "refresh_token" in errors[GENERAL]


def test_secrets_are_not_shown_again() -> None:
    shown = read_form({"client_secret": "s3cret", "refresh_token": "r", "id": "a"}, []).shown
    assert "s3cret" not in shown.values() and "r" not in shown.values()


@pytest.mark.parametrize("line", ["Contacted = Lead", "Leads Contacted Lead", "Tasks: a = b"])
def test_a_status_map_line_that_cannot_be_read_says_how_to_write_it(line: str) -> None:
    with pytest.raises(FormProblem) as problem:
        parse_status_map(line)
    assert problem.value.field == "status_map" and "Leads:" in str(problem.value)
