"""Is this webhook a usable record change? Every reason at once when it is not."""

from schemas.envelope import RawEnvelope
from schemas.records import RecordChange
from schemas.source import PROFILE_FIELDS, Module, SourceConfig, normalise_field_name
from streams.money import InvalidAmount, parse_amount

IDENTITY_FIELDS = ("email", "phone", "mobile", *PROFILE_FIELDS)


class InvalidWebhook(Exception):
    def __init__(self, reasons: list[str]) -> None:
        if not reasons:
            raise ValueError("an invalid webhook needs at least one reason")
        super().__init__("; ".join(reasons))
        self.reasons = list(reasons)


def validate(envelope: RawEnvelope, source: SourceConfig) -> RecordChange:
    """The record change the webhook describes, or InvalidWebhook with every reason."""
    if envelope.source_id != source.id:
        # A wiring mistake, not a bad webhook: it must not be parked as one.
        raise ValueError(f"envelope of source {envelope.source_id!r} checked against {source.id!r}")
    parameters, conflicting = _normalised_parameters(envelope.parameters)

    if "deal_id" in parameters and "lead_id" not in parameters:
        module, id_field, status_field, amount_field = Module.DEALS, "deal_id", "stage", "amount"
    else:
        module, id_field, status_field = Module.LEADS, "lead_id", "lead_status"
        amount_field = source.amount_field

    reasons: list[str] = []

    def required(name: str) -> str:
        if name in conflicting:
            reasons.append(f"field {name!r} is sent twice with different values")
        elif name not in parameters:
            reasons.append(f"missing field {name!r}")
        elif not parameters[name]:
            reasons.append(f"field {name!r} is empty")
        return parameters.get(name, "")

    record_id = required(id_field)
    cdp_id = required("cdp_id")
    status = required(status_field)
    modified_by = required("modified_by")

    amount = None
    if amount_field in conflicting:
        reasons.append(f"field {amount_field!r} is sent twice with different values")
    elif amount_field not in parameters:
        reasons.append(f"missing field {amount_field!r}")
    else:
        try:
            # Blank is allowed: a conversion without a value.
            amount = parse_amount(parameters[amount_field])
        except InvalidAmount as error:
            reasons.append(f"field {amount_field!r} is {error}")

    if reasons:
        raise InvalidWebhook(reasons)
    return RecordChange(
        source_id=envelope.source_id,
        module=module,
        record_id=record_id,
        cdp_id=cdp_id,
        status=status,
        amount=amount,
        modified_by=modified_by,
        profile={name: parameters[name] for name in IDENTITY_FIELDS if parameters.get(name)},
        envelope_id=envelope.envelope_id,
        received_at=envelope.received_at,
        replayed=envelope.replayed_at is not None,
    )


def _normalised_parameters(parameters: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    """Trimmed values under normalised names, and the names sent twice with different
    values ("Lead Status" and "lead_status"); for those the first value is kept."""
    normalised: dict[str, str] = {}
    conflicting: set[str] = set()
    for name, value in parameters.items():
        key, trimmed = normalise_field_name(name), value.strip()
        if key not in normalised:
            normalised[key] = trimmed
        elif normalised[key] != trimmed:
            conflicting.add(key)
    return normalised, conflicting
