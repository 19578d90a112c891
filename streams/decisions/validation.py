"""Is this webhook a usable record change? Every reason at once when it is not."""

from schemas.envelope import RawEnvelope
from schemas.records import RecordChange
from schemas.source import SourceConfig
from streams.decisions.event_time import choose_event_time
from streams.decisions.money import InvalidAmount, parse_amount
from zoho.fields import (
    CDP_ID_FIELD,
    IDENTITY_FIELDS,
    MODIFIED_BY_FIELD,
    RECORD_ID_FIELDS,
    STATUS_FIELDS,
    amount_field,
    module_of,
    normalise_field_name,
)


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

    module = module_of(parameters)
    amount_name = amount_field(module, source.amount_field)

    reasons: list[str] = []

    def required(name: str) -> str:
        if name in conflicting:
            reasons.append(f"field {name!r} is sent twice with different values")
        elif name not in parameters:
            reasons.append(f"missing field {name!r}")
        elif not parameters[name]:
            reasons.append(f"field {name!r} is empty")
        return parameters.get(name, "")

    record_id = required(RECORD_ID_FIELDS[module])
    cdp_id = required(CDP_ID_FIELD)
    status = required(STATUS_FIELDS[module])
    modified_by = required(MODIFIED_BY_FIELD)

    amount = None
    if amount_name in conflicting:
        reasons.append(f"field {amount_name!r} is sent twice with different values")
    elif amount_name not in parameters:
        reasons.append(f"missing field {amount_name!r}")
    else:
        try:
            # Blank is allowed: a conversion without a value.
            amount = parse_amount(parameters[amount_name])
        except InvalidAmount as error:
            reasons.append(f"field {amount_name!r} is {error}")

    if reasons:
        raise InvalidWebhook(reasons)
    event_time, event_time_source = choose_event_time(
        parameters, envelope.received_at, envelope.status_changed_at
    )
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
        # None is "when received", so a webhook's change stays as it always was.
        event_time=None if event_time_source == "received" else event_time,
        event_time_source=event_time_source,
        origin=envelope.origin,
        test=envelope.test,
    )


def _normalised_parameters(parameters: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    """Trimmed values under normalised names, and the names sent twice with different
    values ("Lead Status" and "lead_status"); for those the first value is kept."""
    normalised = {normalise_field_name(name): value.strip() for name, value in parameters.items()}
    if len(normalised) == len(parameters):
        # No two names normalise alike, as in nearly every webhook: nothing can conflict.
        return normalised, set()
    normalised = {}
    conflicting: set[str] = set()
    for name, value in parameters.items():
        key, trimmed = normalise_field_name(name), value.strip()
        if key not in normalised:
            normalised[key] = trimmed
        elif normalised[key] != trimmed:
            conflicting.add(key)
    return normalised, conflicting
