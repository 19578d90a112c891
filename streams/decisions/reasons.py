"""A parked webhook's reasons are sentences for people; metrics need a few fixed kinds."""

_KINDS = (
    ("missing field", "missing_field"),
    ("is empty", "empty_field"),
    ("is sent twice", "conflicting_field"),
    ("unknown source", "unknown_source"),
    ("not a raw envelope", "undecodable"),
    ("could not check the record", "crm_unavailable"),
    ("processing failed", "processing_failed"),
)


def reason_code(reason: str) -> str:
    """The kind of a reason, for a metric label; an amount that is not a number and the
    CRM's disagreements are `bad_value` and `not_confirmed`."""
    for fragment, code in _KINDS:
        if fragment in reason:
            return code
    if reason.startswith("field "):
        return "bad_value"
    return "not_confirmed"
