import pytest

from ingress.auth import BadApiKey, UnknownSource, authenticate
from schemas.sources_file import parse_sources

SOURCES = parse_sources(
    [{"id": "shop", "api_key": "shop-api-key-0123456789", "exchange_rate": "1", "currency": "USD"}],
    {},
)


def test_the_right_key_opens_its_source() -> None:
    assert authenticate(SOURCES, "shop", "shop-api-key-0123456789").id == "shop"


@pytest.mark.parametrize(
    "presented", [None, "", "shop-api-key-012345678", "shop-api-key-0123456789x"]
)
def test_a_missing_or_wrong_key_is_refused(presented: str | None) -> None:
    with pytest.raises(BadApiKey):
        authenticate(SOURCES, "shop", presented)


def test_an_unknown_source_is_not_found() -> None:
    with pytest.raises(UnknownSource):
        authenticate(SOURCES, "nope", "shop-api-key-0123456789")
