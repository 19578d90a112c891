from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from schemas.sources_file import SourcesFileError, load_sources
from tests.builders import zoho_source
from zoho.fields import Module

GOOD = """
sources:
  - id: acme
    api_key: ${ACME_KEY}
    exchange_rate: "1.08"
    currency: usd
    client_secret: ${ACME_SECRET}
    status_map:
      Leads:
        Contacted: Lead
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    return path


def test_a_good_file_resolves_environment_references(tmp_path: Path) -> None:
    env = {"ACME_KEY": "k" * 20, "ACME_SECRET": "s3cret"}
    [source] = load_sources(write(tmp_path, GOOD), env).values()
    assert source.api_key.get_secret_value() == "k" * 20
    assert source.client_secret.get_secret_value() == "s3cret"
    assert source.currency == "USD" and source.exchange_rate == Decimal("1.08")
    assert source.accounts_url == "https://accounts.zoho.com"
    assert source.amount_field == "annual_revenue"
    assert source.status_map == {Module.LEADS: {"Contacted": "Lead"}}
    assert "s3cret" not in repr(source) and "k" * 20 not in repr(source)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("currency", "XYZ", "field 'currency': .*'XYZ' is not an ISO 4217 currency code"),
        ("exchange_rate", "-1", "field 'exchange_rate'"),
        ("api_key", "short", "field 'api_key': .*at least 16 characters"),
        ("accounts_url", "accounts.zoho.eu", "field 'accounts_url'"),
        ("pass_through", ["shoe_size"], "field 'pass_through'.*shoe_size"),
        ("colour", "blue", "field 'colour'"),
        (
            "status_map",
            {"Leads": {"Closed Won": "A", "closed-won": "B"}},
            "field 'status_map': .*'Closed Won' and 'closed-won' are one status",
        ),
    ],
)
def test_a_bad_field_names_source_and_field(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    entry = {"id": "acme", "api_key": "k" * 20, "exchange_rate": "1", "currency": "USD"}
    text = yaml.safe_dump({"sources": [entry | {field: value}]})
    with pytest.raises(SourcesFileError, match=f"source 'acme': {message}"):
        load_sources(write(tmp_path, text), {})


def test_a_missing_environment_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        SourcesFileError,
        match="source 'acme': field 'api_key': environment variable ACME_KEY is not set",
    ):
        load_sources(write(tmp_path, GOOD), {"ACME_SECRET": "x"})


def test_a_duplicate_id_is_refused(tmp_path: Path) -> None:
    entry = f"  - id: a\n    api_key: '{'k' * 20}'\n    exchange_rate: '1'\n    currency: USD\n"
    with pytest.raises(SourcesFileError, match="used twice"):
        load_sources(write(tmp_path, "sources:\n" + entry + entry), {})


def test_the_cdp_id_field_and_the_sweep_have_defaults_and_a_source_may_change_them() -> None:
    source = zoho_source()
    assert source.cdp_id_field == "CDP_ID" and source.sweep is True
    custom = zoho_source(cdp_id_field="CDP_Ref__c", sweep=False)
    assert (custom.cdp_id_field, custom.sweep) == ("CDP_Ref__c", False)
    with pytest.raises(SourcesFileError, match="cdp_id_field"):
        zoho_source(cdp_id_field="CDP ID; drop")
