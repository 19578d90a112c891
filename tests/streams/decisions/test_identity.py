import pytest

from schemas.conversion import UserData
from streams.decisions.identity import (
    Identity,
    build_identity,
    normalise_country,
    normalise_email,
    normalise_phone,
    normalise_zip,
    sha256_hex,
)

h = sha256_hex


@pytest.mark.parametrize(
    ("text", "digest"),
    [
        ("test@example.com", "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"),
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ],
)
def test_sha256_hex_known_vectors(text: str, digest: str) -> None:
    assert sha256_hex(text) == digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("test@example.com", "test@example.com"),
        ("  Test@Example.COM ", "test@example.com"),
        ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
        ("test.example.com", None),
        ("test@example", None),
        ("test@@example.com", None),
        ("a@b@example.com", None),
        ("@example.com", None),
        ("test@.com", None),
        ("test@example.", None),
        ("te st@example.com", None),
    ],
)
def test_normalise_email(text: str, expected: str | None) -> None:
    assert normalise_email(text) == expected


@pytest.mark.parametrize(
    ("text", "default_country", "expected"),
    [
        ("+1 650-253-0000", None, "+16502530000"),
        ("+1 650-253-0000", "DE", "+16502530000"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("(650) 253-0000", "us", "+16502530000"),
        ("030 901820", "DE", "+4930901820"),
        ("0049 30 901820", "DE", "+4930901820"),
        ("020 7031 3000", "GB", "+442070313000"),
        ("+44 20 7031 3000", None, "+442070313000"),
        # No country code and no default country: cannot tell.
        ("(650) 253-0000", None, None),
        ("12345", "US", None),
        ("+1 555 0100", None, None),
        ("call me", "US", None),
    ],
)
def test_normalise_phone(text: str, default_country: str | None, expected: str | None) -> None:
    assert normalise_phone(text, default_country) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("US", "us"),
        ("us", "us"),
        (" de ", "de"),
        ("United States", "us"),
        ("united  states", "us"),
        ("GERMANY", "de"),
        ("United Kingdom", "gb"),
        ("Côte d’Ivoire", "ci"),
        ("XX", None),
        ("EU", None),
        ("European Union", None),
        ("world", None),
        ("Atlantis", None),
        ("USA", "us"),
        ("U.S.A.", "us"),
        ("UK", "gb"),
        ("England", "gb"),
        ("Czech Republic", "cz"),
    ],
)
def test_normalise_country(text: str, expected: str | None) -> None:
    assert normalise_country(text) == expected


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("94105", "us", "94105"),
        ("94105-1234", "us", "94105"),
        (" 94105 1234 ", "us", "94105"),
        ("9410", "us", None),
        ("ABCDE", "us", None),
        ("SW1A 1AA", "gb", "sw1a1aa"),
        ("SW1A 1AA", None, "sw1a1aa"),
        ("10115", "de", "10115"),
        ("123-4567", "jp", "1234567"),
        ("94105-1234", None, "941051234"),
    ],
)
def test_normalise_zip(text: str, region: str | None, expected: str | None) -> None:
    assert normalise_zip(text, region) == expected


@pytest.mark.parametrize(
    ("fields", "default_country", "pass_through", "expected"),
    [
        (
            {"email": " Test@Example.com "},
            None,
            (),
            Identity(UserData(em=[h("test@example.com")]), {}, ()),
        ),
        (
            {"email": "not-an-email"},
            None,
            (),
            Identity(UserData(), {}, ("email",)),
        ),
        (
            {"phone": "+1 (650) 253-0000"},
            None,
            (),
            Identity(UserData(ph=[h("16502530000")], ph_e164=[h("+16502530000")]), {}, ()),
        ),
        (
            {"phone": "(650) 253-0000"},
            "US",
            (),
            Identity(UserData(ph=[h("16502530000")], ph_e164=[h("+16502530000")]), {}, ()),
        ),
        (
            {"phone": "(650) 253-0000"},
            None,
            (),
            Identity(UserData(), {}, ("phone",)),
        ),
        (
            {"phone": "030 901820", "mobile": "+44 7400 123456"},
            "DE",
            (),
            Identity(
                UserData(
                    ph=[h("4930901820"), h("447400123456")],
                    ph_e164=[h("+4930901820"), h("+447400123456")],
                ),
                {},
                (),
            ),
        ),
        (
            {"phone": "030 901820", "mobile": "+49 30 901820"},
            "DE",
            (),
            Identity(UserData(ph=[h("4930901820")], ph_e164=[h("+4930901820")]), {}, ()),
        ),
        (
            {"phone": "123", "mobile": "+49 30 901820"},
            "DE",
            (),
            Identity(UserData(ph=[h("4930901820")], ph_e164=[h("+4930901820")]), {}, ("phone",)),
        ),
        (
            {"first_name": " Mary-Ann ", "last_name": "O'Brien"},
            None,
            (),
            Identity(UserData(fn=[h("maryann")], ln=[h("obrien")]), {}, ()),
        ),
        (
            {"first_name": "Zoë", "last_name": "Müller-Lüdenscheidt"},
            None,
            (),
            Identity(UserData(fn=[h("zoë")], ln=[h("müllerlüdenscheidt")]), {}, ()),
        ),
        (
            # Decomposed "e" + combining diaeresis hashes like the composed letter.
            {"first_name": "Zoe\u0308"},
            None,
            (),
            Identity(UserData(fn=[h("zo\u00eb")]), {}, ()),
        ),
        (
            {"first_name": "Ἀλέξανδρος", "last_name": "山田"},
            None,
            (),
            Identity(UserData(fn=[h("ἀλέξανδρος")], ln=[h("山田")]), {}, ()),
        ),
        (
            {"first_name": "..."},
            None,
            (),
            Identity(UserData(), {}, ("first_name",)),
        ),
        (
            {"city": "San Francisco", "state": "CA"},
            None,
            (),
            Identity(UserData(ct=[h("sanfrancisco")], st=[h("ca")]), {}, ()),
        ),
        (
            {"city": "St. John's", "state": "New South-Wales"},
            None,
            (),
            Identity(UserData(ct=[h("stjohns")], st=[h("newsouthwales")]), {}, ()),
        ),
        (
            {"zip_code": "94105-1234", "country": "United States"},
            None,
            (),
            Identity(UserData(zp=[h("94105")], country=[h("us")]), {}, ()),
        ),
        (
            {"zip_code": "94105-1234"},
            "US",
            (),
            Identity(UserData(zp=[h("94105")]), {}, ()),
        ),
        (
            # The record's own country wins over the source's default.
            {"zip_code": "SW1A 1AA", "country": "GB"},
            "US",
            (),
            Identity(UserData(zp=[h("sw1a1aa")], country=[h("gb")]), {}, ()),
        ),
        (
            {"zip_code": "SW1A 1AA"},
            "US",
            (),
            Identity(UserData(), {}, ("zip_code",)),
        ),
        (
            {"country": "Atlantis"},
            None,
            (),
            Identity(UserData(), {}, ("country",)),
        ),
        (
            # Street and title have no hashed key: dropped unless passed through.
            {"street": "1 Main St", "title": "CTO"},
            None,
            (),
            Identity(UserData(), {}, ()),
        ),
        (
            {"street": " 1 Main St ", "title": "CTO", "city": "Paris", "first_name": "Jean"},
            None,
            ("street", "title", "city"),
            Identity(
                UserData(fn=[h("jean")]),
                {"street": "1 Main St", "title": "CTO", "city": "Paris"},
                (),
            ),
        ),
        (
            # Passed through plain, so not "unusable" either.
            {"country": "Atlantis"},
            None,
            ("country",),
            Identity(UserData(), {"country": "Atlantis"}, ()),
        ),
        (
            {"email": " ", "phone": "", "first_name": "  ", "lead_status": "Contacted"},
            "US",
            ("first_name",),
            Identity(UserData(), {}, ()),
        ),
    ],
)
def test_build_identity(
    fields: dict[str, str],
    default_country: str | None,
    pass_through: tuple[str, ...],
    expected: Identity,
) -> None:
    assert build_identity(fields, default_country, pass_through) == expected


def test_a_full_profile() -> None:
    identity = build_identity(
        {
            "email": "Jane.Doe@Example.com",
            "phone": "+1 650 253 0000",
            "mobile": "(201) 555-0123",
            "first_name": "Jane",
            "last_name": "Doe",
            "street": "1600 Amphitheatre Pkwy",
            "city": "Mountain View",
            "state": "CA",
            "zip_code": "94043-1351",
            "country": "US",
            "title": "Director",
        },
        "US",
        ["title"],
    )
    assert identity.user_data.model_dump() == {
        "em": [h("jane.doe@example.com")],
        "ph": [h("16502530000"), h("12015550123")],
        "ph_e164": [h("+16502530000"), h("+12015550123")],
        "fn": [h("jane")],
        "ln": [h("doe")],
        "ct": [h("mountainview")],
        "st": [h("ca")],
        "zp": [h("94043")],
        "country": [h("us")],
    }
    assert identity.profile == {"title": "Director"}
    assert identity.unusable == ()


def test_nothing_raw_leaves_in_user_data() -> None:
    fields = {"email": "not-an-email", "phone": "12", "first_name": "Jane", "city": "Paris"}
    dumped = build_identity(fields, "US", ()).user_data.model_dump_json()
    for value in ("not-an-email", "Jane", "jane", "Paris", "paris"):
        assert value not in dumped
