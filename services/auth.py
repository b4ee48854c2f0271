"""API keys: create (shown once), verify a presented key, revoke. Secrets are stored hashed."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from domain.access import Caller, Role, key_name_problem
from services.db import transaction
from services.tables import ApiKey, utcnow

PREFIX = "of"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyService:
    def __init__(self, engine: Engine, bootstrap_key: str | None = None) -> None:
        self._engine = engine
        self._bootstrap_key = bootstrap_key

    def create(self, name: str, role: Role) -> tuple[str, Caller]:
        """Returns the full key (the only time it exists in clear) and who it identifies."""
        name = name.strip()
        problem = key_name_problem(name)
        if problem is not None:
            raise ValueError(f"name: {problem}")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(24)
        with transaction(self._engine) as session:
            session.add(ApiKey(key_id=key_id, name=name, role=role.value, secret_sha256=_sha256(secret)))
        return f"{PREFIX}_{key_id}_{secret}", Caller(key_id=key_id, name=name, role=role)

    def verify(self, presented: str) -> Caller | None:
        if self._bootstrap_key and hmac.compare_digest(presented.encode(), self._bootstrap_key.encode()):
            return Caller(key_id="bootstrap", name="bootstrap", role=Role.OPERATOR)
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        _, key_id, secret = parts
        with Session(self._engine) as session:
            row = session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_sha256, _sha256(secret)):
            return None
        return Caller(key_id=row.key_id, name=row.name, role=Role(row.role))

    def revoke(self, key_id: str) -> bool:
        with transaction(self._engine) as session:
            result = session.execute(
                update(ApiKey)
                .where(col(ApiKey.key_id) == key_id, col(ApiKey.revoked_at).is_(None))
                .values(revoked_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def all_keys(self) -> list[ApiKey]:
        with Session(self._engine) as session:
            return list(session.exec(select(ApiKey).order_by(col(ApiKey.created_at))).all())
