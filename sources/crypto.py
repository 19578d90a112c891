"""Encryption of the secrets a source holds, with keys that can rotate.

`MultiFernet` encrypts with the first key and decrypts with any, so a new key goes first
and the old one stays listed until every source was written again."""

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr


class NoEncryptionKey(ValueError):
    pass


class UndecryptableSecret(ValueError):
    """No configured key opens the value: a key was dropped from the settings too early."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        usable = [key.strip() for key in keys if key.strip()]
        if not usable:
            raise NoEncryptionKey(
                "SOURCES_ENCRYPTION_KEYS is not set: generate a key with "
                "`zoho-cdp-sources generate-key`"
            )
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in usable])
        except ValueError:
            # Fernet's message is generic and says nothing about the key itself.
            raise NoEncryptionKey(
                "SOURCES_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from None

    @classmethod
    def from_setting(cls, keys: SecretStr) -> "SecretBox":
        return cls(keys.get_secret_value().split(","))

    def __repr__(self) -> str:
        return "SecretBox(...)"

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise UndecryptableSecret("no configured key decrypts it") from None
