import pytest

from streams.decisions.reasons import reason_code


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("missing field 'cdp_id'", "missing_field"),
        ("field 'cdp_id' is empty", "empty_field"),
        ("field 'lead_status' is sent twice with different values", "conflicting_field"),
        ("unknown source 'x'", "unknown_source"),
        ("not a raw envelope: message: Invalid JSON", "undecodable"),
        ("could not check the record: Zoho timed out; replay it", "crm_unavailable"),
        ("processing failed: KeyError", "processing_failed"),
        ("field 'annual_revenue' is not a number: 'abc'", "bad_value"),
        ("Zoho CRM record Leads/1 does not exist", "not_confirmed"),
    ],
)
def test_each_reason_has_a_kind(reason: str, code: str) -> None:
    assert reason_code(reason) == code
