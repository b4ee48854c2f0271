"""The API's edges: the key is checked before a body is read, bodies have limits, bad input is a 4xx that
names the field and says what to send."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from domain.access import Role
from services.auth import ApiKeyService
from tests.support.payloads import body
from tests.support.temporal import make_settings

MIB = 1024 * 1024


@pytest.fixture
async def bare(dev_env: WorkflowEnvironment, db_url: str, engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a real database and Temporal, no worker: for answers given before any order runs."""
    settings = make_settings(
        temporal_address=dev_env.client.service_client.config.target_host, database_url=db_url
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
def operator(engine: Engine) -> dict[str, str]:
    key, _ = ApiKeyService(engine).create("ops@demo", Role.OPERATOR)
    return {"authorization": f"Bearer {key}"}


class Upload:
    """A request body that streams `total` bytes in chunks and counts how much the server pulled."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.total = total
        self.chunk = chunk
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            self.sent += self.chunk
            yield b"x" * self.chunk


# ------------------------------------------------------------------ the key before the body
@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer of_nosuchkey_secret"}, {"authorization": "Basic b3BzOnB3"}],
    ids=["no key", "unknown key", "not bearer"],
)
async def test_a_huge_upload_without_a_valid_key_is_refused_before_it_is_read(
    bare: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    upload = Upload(100 * MIB)
    response = await bare.post("/orders", content=upload, headers=headers)
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["detail"]
    assert upload.sent == 0  # not one chunk of the 100 MiB was taken

    sized = await bare.post("/orders", content=b"x" * (2 * MIB), headers=headers)
    assert sized.status_code == 401  # not 413: nobody learns anything without a key


# ------------------------------------------------------------------ body limits
async def test_a_json_body_over_1_mib_is_413_naming_the_limit(
    bare: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    response = await bare.post(
        "/orders", content=b"x" * (MIB + 1), headers={**operator, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "1 MiB" in response.json()["detail"]


async def test_a_chunked_body_is_cut_off_at_the_limit_not_read_to_the_end(
    bare: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    upload = Upload(100 * MIB)
    response = await bare.post(
        "/orders", content=upload, headers={**operator, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "1 MiB" in response.json()["detail"]
    assert upload.sent <= 2 * MIB  # stopped just past the limit, never the 100 MiB


async def test_the_csv_import_takes_more_than_a_json_route_but_has_its_own_limit(
    bare: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    csv_headers = {**operator, "content-type": "text/csv"}
    big = "warehouse,sku,on_hand\n" + "WH-SZ,CASE-IP15,not-a-number\n" * (2 * MIB // 29)
    response = await bare.post("/inventory/import", content=big.encode(), headers=csv_headers)
    assert response.status_code == 422, response.text  # read and checked: over 1 MiB is fine here
    assert "on_hand" in response.text

    huge = await bare.post("/inventory/import", content=Upload(100 * MIB), headers=csv_headers)
    assert huge.status_code == 413
    assert "16 MiB" in huge.json()["detail"]


# ------------------------------------------------------------------ cursors
def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


MALFORMED_CURSORS = {
    "nul in the order id": _b64(json.dumps(["2026-01-01T00:00:00+00:00", "ord_\x00"]).encode()),
    "not base64": "%%%not-base64%%%",
    "cut short": _b64(json.dumps(["2026-01-01T00:00:00+00:00", "ord_1"]).encode())[:-5],
    "bad date": _b64(json.dumps(["2026-13-45T99:00:00+00:00", "ord_1"]).encode()),
    "naive date": _b64(json.dumps(["2026-01-01T00:00:00", "ord_1"]).encode()),
    "one part": _b64(json.dumps(["2026-01-01T00:00:00+00:00"]).encode()),
    "an object": _b64(json.dumps({"a": "2026-01-01T00:00:00+00:00", "b": "ord_1"}).encode()),
    "numbers": _b64(json.dumps([1, 2]).encode()),
    "a string": _b64(json.dumps("ab").encode()),
    "not utf-8": _b64(b"\xff\xfe[\x80]"),
    "nul in the date": _b64(json.dumps(["2026-01-01\x00", "ord_1"]).encode()),
}


@pytest.mark.parametrize("cursor", MALFORMED_CURSORS.values(), ids=MALFORMED_CURSORS.keys())
async def test_a_malformed_cursor_is_422_naming_the_cursor(
    bare: httpx.AsyncClient, operator: dict[str, str], cursor: str
) -> None:
    response = await bare.get("/orders", params={"cursor": cursor}, headers=operator)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "cursor"
    assert "next_cursor" in response.json()["detail"]


# ------------------------------------------------------------------ validation messages
async def test_a_rule_across_fields_names_the_field_it_is_about(
    bare: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    order = body("EDGE-1")
    order["lines"][0]["unit_price"] = "29.901"
    response = await bare.post("/orders", json=order, headers=operator)
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["lines[0].unit_price"]
    assert "decimals" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [(b"{not json", "application/json"), (b"channel=shopify", "application/x-www-form-urlencoded")],
    ids=["broken json", "a form"],
)
async def test_a_body_that_is_not_json_says_to_send_json(
    bare: httpx.AsyncClient, operator: dict[str, str], content: bytes, content_type: str
) -> None:
    response = await bare.post("/orders", content=content, headers={**operator, "content-type": content_type})
    assert response.status_code == 422
    assert "Content-Type: application/json" in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "body"


async def test_a_tracking_event_dated_in_the_far_future_is_refused(
    bare: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    later: Callable[[timedelta], str] = lambda ahead: (datetime.now(UTC) + ahead).isoformat()  # noqa: E731
    for at in ("9999-12-31T00:00:00+00:00", later(timedelta(days=2))):
        event = {"status": "in_transit", "at": at}
        response = await bare.post("/orders/ord_missing/tracking", json=event, headers=operator)
        assert response.status_code == 422, response.text
        error = response.json()["errors"][0]
        assert error["field"] == "at"
        assert "future" in error["message"]
    # an event a few hours ahead (a carrier's clock, a time zone slip) is still taken: 404 for no order
    near = {"status": "in_transit", "at": later(timedelta(hours=3))}
    response = await bare.post("/orders/ord_missing/tracking", json=near, headers=operator)
    assert response.status_code == 404
