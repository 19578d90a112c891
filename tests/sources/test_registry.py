"""What the registry makes of each message of the sources topic (the Kafka side is in
tests/integration/test_sources_live.py)."""

import logging

import pytest

from schemas.settings import Settings
from schemas.source import SourceConfig
from sources.crypto import SecretBox, generate_key
from sources.record import encode_source
from sources.registry import SourceRegistry

KEY = generate_key()
SOURCE = SourceConfig.model_validate(
    {
        "id": "shop",
        "api_key": "shop-api-key-0123456789",
        "refresh_token": "1000.refresh-token-secret",
        "exchange_rate": "1",
        "currency": "USD",
    }
)


def registry() -> SourceRegistry:
    return SourceRegistry(Settings(), SecretBox([KEY]))


def test_the_latest_version_wins_and_a_tombstone_deletes() -> None:
    sources = registry()
    sources.apply(b"shop", encode_source(SOURCE, SecretBox([KEY])))
    repriced = SOURCE.model_copy(update={"currency": "EUR"})
    sources.apply(b"shop", encode_source(repriced, SecretBox([KEY])))
    assert dict(sources) == {"shop": repriced}
    sources.apply(b"shop", None)
    assert "shop" not in sources and len(sources) == 0


def test_a_version_no_key_opens_removes_the_source_and_says_so_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sources = registry()
    sources.apply(b"shop", encode_source(SOURCE, SecretBox([KEY])))
    with caplog.at_level(logging.ERROR):
        sources.apply(b"shop", encode_source(SOURCE, SecretBox([generate_key()])))
    # Serving the older version would keep a key working that was meant to be replaced.
    assert "shop" not in sources
    assert "cannot be decrypted" in caplog.text
    assert "refresh-token-secret" not in caplog.text


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"shop", b"{not json"),
        (b"other", encode_source(SOURCE, SecretBox([KEY]))),  # key and id differ
        (None, encode_source(SOURCE, SecretBox([KEY]))),
    ],
)
def test_an_unusable_message_is_left_out(key: bytes | None, value: bytes) -> None:
    sources = registry()
    try:
        sources.apply(key, value)
    except ValueError:
        pytest.fail("an unusable message must not stop the registry")
    assert "shop" not in sources


def test_no_secret_in_its_repr() -> None:
    sources = registry()
    sources.apply(b"shop", encode_source(SOURCE, SecretBox([KEY])))
    assert repr(sources) == "SourceRegistry(topic='cdp.sources', sources=['shop'])"
