"""Reading vendors' JSON exactly: numbers as Decimal (never a float), each problem naming its field."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from integrations.errors import PayloadError

M = TypeVar("M", bound=BaseModel)


def load_json(raw_body: bytes) -> dict[str, Any]:
    """The body as a JSON object; decimals stay Decimal so "19.99" and 19.99 are both exact."""
    try:
        data = json.loads(raw_body, parse_float=Decimal)
    except (UnicodeDecodeError, ValueError) as error:
        raise PayloadError("body", f"not JSON ({error})") from error
    if not isinstance(data, dict):
        raise PayloadError("body", "not a JSON object")
    return data


def need(data: dict[str, Any], key: str, where: str = "") -> Any:
    """data[key], or a PayloadError naming the field when it is missing or null."""
    value = data.get(key)
    if value is None:
        raise PayloadError(f"{where}{key}", "missing")
    return value


def text(value: Any) -> str:
    """A text field that may be null, a string or an id sent as a number."""
    return "" if value is None else str(value).strip()


def amount(value: Any, field: str) -> Decimal:
    """A money amount sent as a string ("19.99") or a JSON number, exactly; null counts as 0."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, bool | float):
        raise PayloadError(field, "a float cannot be an exact amount")
    try:
        result = Decimal(str(value))
    except InvalidOperation as error:
        raise PayloadError(field, f"{value!r} is not an amount") from error
    if not result.is_finite():
        raise PayloadError(field, f"{value!r} is not an amount")
    return result


def timestamp(value: Any, field: str) -> datetime:
    """An ISO 8601 time that carries its offset ("2026-01-05T10:00:00-05:00", "...Z")."""
    try:
        result = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as error:
        raise PayloadError(field, f"{value!r} is not an ISO 8601 time") from error
    if result.tzinfo is None:
        raise PayloadError(field, f"{value!r} has no time zone")
    return result


def build(model: type[M], where: str, **fields: Any) -> M:
    """model(**fields), a validation problem reported as a PayloadError naming the first bad field."""
    try:
        return model(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        if not location:  # a model-level check names its field first: "total: 10.001 has more decimals..."
            named = str(first.get("ctx", {}).get("error", "")).partition(":")[0]
            location = named if named in model.model_fields else ""
        raise PayloadError(f"{where}{location}" if location else where.rstrip("."), first["msg"]) from error
