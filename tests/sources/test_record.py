"""A source as a message of the sources topic: secrets encrypted, keys that rotate."""

import json

import pytest
from pydantic import SecretStr

from schemas.source import SourceConfig
from sources.crypto import NoEncryptionKey, SecretBox, UndecryptableSecret, generate_key
from sources.record import decode_source, encode_source, secret_fields, source_key

SECRETS = {
    "api_key": "the-api-key-0123456789",
    "client_secret": "the-client-secret-0123",
    "refresh_token": "1000.the-refresh-token",
    "previous_api_key": "the-old-api-key-0123456789",
}
SOURCE = SourceConfig.model_validate(
    {"id": "shop", "exchange_rate": "1.08", "currency": "USD", "client_id": "1000.C"} | SECRETS
)
OLD, NEW = generate_key(), generate_key()


def test_every_secret_field_is_found_from_the_model() -> None:
    assert set(secret_fields()) == set(SECRETS)


def test_a_source_round_trips_with_no_secret_in_the_clear() -> None:
    box = SecretBox([NEW])
    value = encode_source(SOURCE, box)
    for secret in SECRETS.values():
        assert secret.encode() not in value
    assert decode_source(value, box) == SOURCE
    assert source_key("shop") == b"shop"
    stored = json.loads(value)
    assert stored["schema_version"] == 1 and stored["source"]["exchange_rate"] == "1.08"


def test_an_empty_secret_stays_empty() -> None:
    bare = SOURCE.model_copy(update={"client_secret": SecretStr("")})
    value = encode_source(bare, SecretBox([NEW]))
    assert json.loads(value)["source"]["client_secret"] == ""
    assert decode_source(value, SecretBox([NEW])).client_secret.get_secret_value() == ""


def test_after_a_key_rotation_old_values_are_read_and_new_writes_use_the_new_key() -> None:
    written_before = encode_source(SOURCE, SecretBox([OLD]))
    rotated = SecretBox([NEW, OLD])
    assert decode_source(written_before, rotated) == SOURCE
    written_after = encode_source(SOURCE, rotated)
    # Readable with the new key alone: the old one can go once every source was rewritten.
    assert decode_source(written_after, SecretBox([NEW])) == SOURCE
    with pytest.raises(UndecryptableSecret):
        decode_source(written_after, SecretBox([OLD]))


def test_a_value_no_key_opens_is_refused_without_quoting_it() -> None:
    with pytest.raises(UndecryptableSecret) as caught:
        decode_source(encode_source(SOURCE, SecretBox([OLD])), SecretBox([NEW]))
    assert "gAAAA" not in str(caught.value)


@pytest.mark.parametrize("keys", [[], [""], ["  "]])
def test_no_key_is_refused(keys: list[str]) -> None:
    with pytest.raises(NoEncryptionKey, match="generate-key"):
        SecretBox(keys)


def test_a_malformed_key_is_refused_without_quoting_it() -> None:
    with pytest.raises(NoEncryptionKey) as caught:
        SecretBox(["not-a-fernet-key"])
    assert "not-a-fernet-key" not in str(caught.value)
    assert repr(SecretBox([NEW])) == "SecretBox(...)"
