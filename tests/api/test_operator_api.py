"""Operators over HTTP: keys and roles, interventions with reasons, batches, stuck orders, audit."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from domain.access import Role
from tests.support.payloads import PAYMENT, SHIPMENT, body
from tests.support.temporal import make_settings


async def _placed(api: httpx.AsyncClient, channel_order_id: str) -> str:
    response = await api.post("/orders", json=body(channel_order_id))
    assert response.status_code == 201, response.text
    return str(response.json()["order_id"])


async def test_every_endpoint_needs_a_key_and_the_right_role(
    api: httpx.AsyncClient, key_for: Callable[[Role], str]
) -> None:
    order_id = await _placed(api, "SG-K1")
    anonymous = {"authorization": ""}
    for method, path in [("GET", f"/orders/{order_id}"), ("GET", "/orders"), ("POST", "/orders")]:
        response = await api.request(method, path, headers=anonymous, json=body("SG-K2"))
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    wrong = await api.get("/orders", headers={"authorization": "Bearer of_0123456789ab_forged"})
    assert wrong.status_code == 401
    assert "of_0123456789ab" not in wrong.text

    viewer = {"authorization": key_for(Role.VIEWER)}
    assert (await api.get(f"/orders/{order_id}", headers=viewer)).status_code == 200
    denied = await api.post("/orders", json=body("SG-K3"), headers=viewer)
    assert (denied.status_code, denied.json()["detail"]) == (
        403,
        "this API key's role (viewer) may not write",
    )

    integration = {"authorization": key_for(Role.INTEGRATION)}
    paid = await api.post(f"/orders/{order_id}/payment", json=PAYMENT, headers=integration)
    assert paid.status_code == 200
    hold = await api.post(
        f"/orders/{order_id}/actions/hold", json={"reason": "fraud check"}, headers=integration
    )
    assert hold.status_code == 403
    assert (await api.get(f"/orders/{order_id}")).json()["on_hold"] is False


async def test_an_action_answers_at_once_and_is_audited(api: httpx.AsyncClient) -> None:
    order_id = await _placed(api, "SG-A1")
    held = await api.post(f"/orders/{order_id}/actions/hold", json={"reason": "address looks fake"})
    assert held.status_code == 200, held.text
    assert held.json()["on_hold"] is True
    assert held.json()["hold_reason"] == "address looks fake"

    again = await api.post(f"/orders/{order_id}/actions/hold", json={"reason": "twice"})
    assert (again.status_code, again.json()["detail"]) == (409, "the order is already on hold")

    note = await api.post(
        f"/orders/{order_id}/actions/note",
        json={"reason": "called buyer", "params": {"text": "buyer confirmed the address by phone"}},
    )
    assert note.status_code == 200
    released = await api.post(f"/orders/{order_id}/actions/release", json={"reason": "verified"})
    assert released.json()["on_hold"] is False

    audit = (await api.get(f"/orders/{order_id}/audit")).json()
    assert [(a["action"], a["actor"], a["reason"]) for a in audit] == [
        ("hold", "ops@demo", "address looks fake"),
        ("note", "ops@demo", "called buyer"),
        ("release", "ops@demo", "verified"),
    ]
    assert audit[1]["params"] == {"text": "buyer confirmed the address by phone"}
    timeline = released.json()["timeline"]
    assert [e["detail"] for e in timeline if e["kind"] == "operator_hold"] == ["ops@demo: address looks fake"]


async def test_actions_refused_by_state_or_missing_params_say_why(api: httpx.AsyncClient) -> None:
    order_id = await _placed(api, "SG-R1")
    missing = await api.post(
        f"/orders/{order_id}/actions/mark-shipped",
        json={"reason": "shipped by hand", "params": {"carrier": "DHL"}},
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "params.tracking_number"
    unknown = await api.post(f"/orders/{order_id}/actions/teleport", json={"reason": "x"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "action"

    await api.post(f"/orders/{order_id}/payment", json=PAYMENT)
    await api.post(f"/orders/{order_id}/shipment", json=SHIPMENT)
    cancel = await api.post(f"/orders/{order_id}/actions/cancel", json={"reason": "buyer asked"})
    assert cancel.status_code == 409
    assert "already shipped" in cancel.json()["detail"]
    address = await api.post(
        f"/orders/{order_id}/actions/change-address",
        json={
            "reason": "buyer moved",
            "params": {"address": {"country": "SG", "city": "Singapore", "line1": "1 Raffles Pl"}},
        },
    )
    assert address.status_code == 409
    assert "address can no longer change" in address.json()["detail"]
    assert (await api.get(f"/orders/{order_id}/audit")).json() == []
    assert (
        await api.post("/orders/ord_missing/actions/note", json={"reason": "x", "params": {"text": "y"}})
    ).status_code == 404


async def test_batch_applies_each_order_independently(api: httpx.AsyncClient) -> None:
    unpaid = await _placed(api, "SG-B1")
    shipped = await _placed(api, "SG-B2")
    await api.post(f"/orders/{shipped}/payment", json={**PAYMENT, "payment_id": "psp_b2"})
    await api.post(f"/orders/{shipped}/shipment", json=SHIPMENT)
    result = await api.post(
        "/orders/actions/cancel",
        json={"order_ids": [unpaid, shipped, "ord_nope", unpaid], "reason": "peak season clean-up"},
    )
    assert result.status_code == 200, result.text
    outcome = {item["order_id"]: (item["ok"], item["status_code"]) for item in result.json()["results"]}
    assert outcome == {unpaid: (True, 200), shipped: (False, 409), "ord_nope": (False, 404)}
    assert (result.json()["succeeded"], result.json()["failed"]) == (1, 2)
    assert (await api.get(f"/orders/{unpaid}")).json()["status"] == "cancelled"
    assert (await api.get(f"/orders/{shipped}")).json()["status"] == "shipped"


async def test_stuck_lists_exceptions_and_holds_with_their_web_ui_link(api: httpx.AsyncClient) -> None:
    await api.put("/inventory/WH-SZ/USB-C-1M", json={"on_hand": 0})  # before placing: nothing to reserve
    short = await _placed(api, "SG-S1")
    await api.post(f"/orders/{short}/payment", json=PAYMENT)
    held = await _placed(api, "SG-S2")
    await api.post(f"/orders/{held}/actions/hold", json={"reason": "fraud check"})
    fine = await _placed(api, "SG-S3")

    stuck = (await api.get("/orders/stuck")).json()
    by_id = {s["order_id"]: s for s in stuck}
    assert set(by_id) == {short, held}
    assert by_id[short]["reasons"] == ["exception: out_of_stock"]
    assert by_id[held]["reasons"][0].startswith("on hold since")
    assert by_id[short]["ui_url"].endswith(f"/namespaces/default/workflows/order-{short}")
    assert fine not in by_id
    assert (await api.get("/orders/stuck", params={"older_than": "1h"})).json() == []
    assert (await api.get("/orders/stuck", params={"older_than": "soon"})).status_code == 422


async def test_a_bootstrap_key_works_only_while_it_is_set(dev_env: WorkflowEnvironment, db_url: str) -> None:
    address = dev_env.client.service_client.config.target_host
    for bootstrap, expected in (("first-deploy-secret", 200), (None, 401)):
        settings = make_settings(temporal_address=address, database_url=db_url, bootstrap_api_key=bootstrap)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                response = await client.get(
                    "/orders", headers={"authorization": "Bearer first-deploy-secret"}
                )
        assert response.status_code == expected
