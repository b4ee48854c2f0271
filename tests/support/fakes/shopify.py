"""A fake Shopify GraphQL Admin API: checks X-Shopify-Access-Token and each operation's variables,
keeps orders with their fulfilment orders, fulfilments and stock levels, and fails on purpose."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.channels.shopify.client import API_VERSION
from tests.support.fakes.server import Faults, Journal, ShapeError, expect, json_error

GRAPHQL_PATH = f"/admin/api/{API_VERSION}/graphql.json"


@dataclass
class FakeOrder:
    id: str
    lines: dict[str, int]  # LineItem gid -> quantity ordered
    fulfilments: list[dict[str, Any]] = field(default_factory=list)
    cancelled_at: str | None = None

    def remaining(self, line: str) -> int:
        done = sum(item["quantity"] for f in self.fulfilments for item in f["items"] if item["line"] == line)
        return int(self.lines[line] - done)


@dataclass
class FakeShopify:
    token: str = "shpat_fake_token"
    faults: Faults = field(default_factory=Faults)
    journal: Journal = field(default_factory=Journal)
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    stock: dict[tuple[str, str], int] = field(default_factory=dict)  # (item gid, location gid) -> available
    variants: dict[str, tuple[str, str]] = field(default_factory=dict)  # sku -> (item gid, location gid)

    def add_order(self, number: int, lines: dict[int, int]) -> FakeOrder:
        order = FakeOrder(
            f"gid://shopify/Order/{number}", {f"gid://shopify/LineItem/{k}": v for k, v in lines.items()}
        )
        self.orders[order.id] = order
        return order

    def app(self) -> Starlette:
        return Starlette(routes=[Route(GRAPHQL_PATH, self.graphql, methods=["POST"])])

    async def graphql(self, request: Request) -> Response:
        try:
            response = self.faults.before() or await self._answer(request)
        except ShapeError as error:
            response = self.journal.refuse(error)
        await self.journal.record(request, response.status_code)
        return response

    async def _answer(self, request: Request) -> Response:
        if request.headers.get("x-shopify-access-token") != self.token:
            return json_error(401, {"errors": "[API] Invalid API key or access token (unrecognized login)"})
        body = json.loads(await request.body())
        query, variables = body["query"], body.get("variables") or {}
        for name, handler in (
            ("query FulfilmentState", self._fulfilment_state),
            ("mutation FulfilmentCreate", self._fulfilment_create),
            ("query OrderCancelledAt", self._cancelled_at),
            ("mutation OrderCancel", self._order_cancel),
            ("query InventoryLevel", self._inventory_level),
            ("mutation InventorySet", self._inventory_set),
            ("query StockBySku", self._stock_by_sku),
        ):
            if name in query:
                data, wrote = handler(variables)
                if wrote and (lost := self.faults.after_write()):
                    return lost
                return JSONResponse({"data": data})
        return JSONResponse(
            {"errors": [{"message": "unknown operation", "extensions": {"code": "BAD_REQUEST"}}]}
        )

    def _fulfilment_state(self, variables: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        order = self.orders.get(variables["id"])
        if order is None:
            return {"order": None}, False
        fulfilment_order = {
            "id": order.id.replace("Order", "FulfillmentOrder"),
            "status": "OPEN" if any(order.remaining(line) for line in order.lines) else "CLOSED",
            "lineItems": {
                "nodes": [
                    {"id": f"{line}-fo", "remainingQuantity": order.remaining(line), "lineItem": {"id": line}}
                    for line in order.lines
                ]
            },
        }
        fulfilments = [
            {"id": f["id"], "status": "SUCCESS", "trackingInfo": [f["tracking"]]} for f in order.fulfilments
        ]
        return {
            "order": {
                "id": order.id,
                "fulfillments": fulfilments,
                "fulfillmentOrders": {"nodes": [fulfilment_order]},
            }
        }, False

    def _fulfilment_create(self, variables: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        given = variables["fulfillment"]
        tracking = given["trackingInfo"]
        expect(tracking["number"] and tracking["company"], "trackingInfo needs company and number")
        groups = given.get("lineItemsByFulfillmentOrder") or []
        expect(len(groups) == 1, "this fake keeps one fulfillment order per order")
        group = groups[0]
        expect(
            group["fulfillmentOrderId"].replace("FulfillmentOrder", "Order") in self.orders,
            "unknown fulfillment order",
        )
        order = self.orders[group["fulfillmentOrderId"].replace("FulfillmentOrder", "Order")]
        items = []
        for item in group["fulfillmentOrderLineItems"]:
            line = item["id"].removesuffix("-fo")
            expect(
                line in order.lines and isinstance(item.get("quantity"), int),
                "unknown fulfillment order line item",
            )
            if item["quantity"] > order.remaining(line):
                errors = [
                    {"field": ["fulfillment"], "message": "Invalid fulfillment order line item quantity"}
                ]
                return {"fulfillmentCreate": {"fulfillment": None, "userErrors": errors}}, False
            items.append({"line": line, "quantity": item["quantity"]})
        fulfilment = {
            "id": f"gid://shopify/Fulfillment/{len(order.fulfilments) + 1}",
            "tracking": tracking,
            "items": items,
        }
        order.fulfilments.append(fulfilment)
        result = {"id": fulfilment["id"], "status": "SUCCESS", "trackingInfo": [tracking]}
        return {"fulfillmentCreate": {"fulfillment": result, "userErrors": []}}, True

    def _cancelled_at(self, variables: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        order = self.orders.get(variables["id"])
        return {"order": order and {"id": order.id, "cancelledAt": order.cancelled_at}}, False

    def _order_cancel(self, variables: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        expect(
            variables["reason"] in ("CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER"),
            'variables["reason"] in ("CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER")',
        )
        expect(isinstance(variables["restock"], bool), "restock must be true or false")
        order = self.orders[variables["orderId"]]
        if order.cancelled_at:
            errors = [
                {"field": ["orderId"], "message": "Order has already been cancelled", "code": "INVALID"}
            ]
            return {"orderCancel": {"job": None, "orderCancelUserErrors": errors}}, False
        order.cancelled_at = "2026-03-05T10:00:00Z"
        return {
            "orderCancel": {"job": {"id": "gid://shopify/Job/1", "done": False}, "orderCancelUserErrors": []}
        }, True

    def _inventory_level(self, variables: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        key = (variables["id"], variables["location"])
        if key not in self.stock:
            return {"inventoryItem": {"inventoryLevel": None}}, False
        level = {"quantities": [{"name": "available", "quantity": self.stock[key]}]}
        return {"inventoryItem": {"inventoryLevel": level}}, False

    def _stock_by_sku(self, variables: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        query = variables["query"]
        expect(query.startswith("sku:'") and query.endswith("'"), "query is sku:'<sku>'")
        sku = query[len("sku:'") : -1].replace("\\'", "'")
        nodes = []
        if sku in self.variants:
            item, location = self.variants[sku]
            quantities = [{"name": "available", "quantity": self.stock.get((item, location), 0)}]
            levels = [{"location": {"id": location}, "quantities": quantities}]
            nodes.append({"sku": sku, "inventoryItem": {"id": item, "inventoryLevels": {"nodes": levels}}})
        return {"productVariants": {"nodes": nodes}}, False

    def _inventory_set(self, variables: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        given = variables["input"]
        expect(
            given["name"] == "available" and given["reason"],
            'given["name"] == "available" and given["reason"]',
        )
        (quantity,) = given["quantities"]
        key = (quantity["inventoryItemId"], quantity["locationId"])
        if self.stock.get(key) != quantity["compareQuantity"]:
            errors = [
                {
                    "field": ["input"],
                    "message": "The compareQuantity is stale.",
                    "code": "COMPARE_QUANTITY_STALE",
                }
            ]
            return {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": errors}}, False
        self.stock[key] = quantity["quantity"]
        return {
            "inventorySetQuantities": {
                "inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/1"},
                "userErrors": [],
            }
        }, True
