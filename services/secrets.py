"""Secrets at rest: Fernet encryption with the key from ORDERS_SECRET_KEY, older keys to rotate from, and
the start-up check that the key can read what the database holds."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import select

from services.db import transaction
from services.tables import SecretCanary, ShopSecret

log = structlog.get_logger(__name__)

GENERATE = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
CANARY = "orderflow secret canary"


class SecretKeyProblem(RuntimeError):
    """The secret key is missing, malformed or not the one the database's secrets were encrypted with.
    Raised at start-up by the API and the worker; the message says which setting to fix and how."""


def _fernet(key: SecretStr, setting: str) -> Fernet:
    try:
        return Fernet(key.get_secret_value().strip().encode())
    except (ValueError, TypeError):
        raise SecretKeyProblem(
            f"{setting} is not a Fernet key (32 bytes, url-safe base64, 44 characters); generate one with "
            f"{GENERATE}"
        ) from None


class SecretBox:
    """Encrypts with the current key; decrypts with it or any previous one (key rotation)."""

    def __init__(self, current: SecretStr | None, previous: Sequence[SecretStr] = ()) -> None:
        if current is None or not current.get_secret_value().strip():
            raise SecretKeyProblem(
                "ORDERS_SECRET_KEY is not set: shop credentials are stored encrypted with it. Generate one "
                f"with {GENERATE}, keep it safe (a lost key means entering every shop's credentials again) "
                "and give the same key to the API and every worker"
            )
        self._current = _fernet(current, "ORDERS_SECRET_KEY")
        older = [_fernet(key, "ORDERS_SECRET_KEYS_PREVIOUS") for key in previous]
        self._ring = MultiFernet([self._current, *older])

    def encrypt(self, plaintext: str) -> str:
        return self._current.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The plaintext; InvalidToken when no configured key encrypted it."""
        return self._ring.decrypt(token.encode()).decode()

    def is_current(self, token: str) -> bool:
        """Encrypted with the current key (no rotation needed)."""
        try:
            self._current.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """The same plaintext under the current key."""
        return self._ring.rotate(token.encode()).decode()


def check_secret_key(engine: Engine, box: SecretBox) -> int:
    """Start-up check: the configured keys decrypt the canary and every stored secret; whatever an older
    key encrypted is re-encrypted with the current one, so that key can then be retired. The first start
    writes the canary. Returns how many values were re-encrypted; raises SecretKeyProblem."""
    rotated = 0
    with transaction(engine) as session:
        canary = session.get(SecretCanary, 1)
        if canary is None:
            session.add(SecretCanary(id=1, ciphertext=box.encrypt(CANARY)))
        secrets = list(session.exec(select(ShopSecret)).all())
        tokens: list[tuple[object, str]] = [(canary, "ciphertext")] if canary else []
        tokens += [(row, "ciphertext") for row in secrets]
        tokens += [(row, "previous_ciphertext") for row in secrets if row.previous_ciphertext]
        for row, column in tokens:
            token = getattr(row, column)
            if box.is_current(token):
                continue
            try:
                setattr(row, column, box.rotate(token))
            except InvalidToken:
                raise SecretKeyProblem(
                    "ORDERS_SECRET_KEY cannot decrypt the secrets this database holds: they were encrypted "
                    "with another key. Set ORDERS_SECRET_KEY to that key, or when rotating keep the old one "
                    "in ORDERS_SECRET_KEYS_PREVIOUS (comma-separated) until every process has started once "
                    "with the new one"
                ) from None
            rotated += 1
    if rotated:
        log.info("secrets_reencrypted", count=rotated)
    return rotated
