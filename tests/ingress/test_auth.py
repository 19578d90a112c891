from datetime import UTC, datetime

import pytest

from ingress.auth import BadApiKey, DisabledSource, UnknownSource, authenticate
from schemas.sources_file import parse_sources

SOURCES = parse_sources(
    [{"id": "shop", "api_key": "shop-api-key-0123456789", "exchange_rate": "1", "currency": "USD"}],
    {},
)


def test_the_right_key_opens_its_source() -> None:
    assert authenticate(SOURCES, "shop", "shop-api-key-0123456789").id == "shop"


@pytest.mark.parametrize(
    "presented",
    [
        None,
        "",
        "shop-api-key-012345678",
        "shop-api-key-0123456789x",
        # Header bytes that are not UTF-8 reach the handler as surrogates.
        "\udcff\udcfe",
        "shop-api-key-0123456789\udcff",
    ],
)
def test_a_missing_or_wrong_key_is_refused(presented: str | None) -> None:
    with pytest.raises(BadApiKey):
        authenticate(SOURCES, "shop", presented)


def test_an_unknown_source_is_not_found() -> None:
    with pytest.raises(UnknownSource):
        authenticate(SOURCES, "nope", "shop-api-key-0123456789")


ROTATED = parse_sources(
    [
        {
            "id": "shop",
            "api_key": "new-api-key-0123456789",
            "previous_api_key": "old-api-key-0123456789",
            "previous_api_key_expires_at": "2030-01-01T12:00:00Z",
            "exchange_rate": "1",
            "currency": "USD",
        }
    ],
    {},
)


@pytest.mark.parametrize(
    ("presented", "now", "accepted"),
    [
        ("new-api-key-0123456789", datetime(2030, 1, 2, tzinfo=UTC), True),
        ("old-api-key-0123456789", datetime(2030, 1, 1, 11, 59, tzinfo=UTC), True),
        ("old-api-key-0123456789", datetime(2030, 1, 1, 12, 0, tzinfo=UTC), False),
        ("", datetime(2029, 1, 1, tzinfo=UTC), False),
    ],
)
def test_the_previous_key_works_until_its_overlap_ends(
    presented: str, now: datetime, accepted: bool
) -> None:
    if accepted:
        assert authenticate(ROTATED, "shop", presented, now).id == "shop"
    else:
        with pytest.raises(BadApiKey):
            authenticate(ROTATED, "shop", presented, now)


def test_an_empty_previous_key_opens_nothing() -> None:
    [source] = SOURCES.values()
    assert source.previous_api_key.get_secret_value() == ""
    with pytest.raises(BadApiKey):
        authenticate(SOURCES, "shop", "")


def test_a_disabled_source_is_gone_for_the_right_key_only() -> None:
    disabled = {"shop": SOURCES["shop"].model_copy(update={"enabled": False})}
    with pytest.raises(DisabledSource):
        authenticate(disabled, "shop", "shop-api-key-0123456789")
    with pytest.raises(BadApiKey):
        authenticate(disabled, "shop", "wrong-key")
