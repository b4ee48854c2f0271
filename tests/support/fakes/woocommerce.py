"""A fake WooCommerce REST API v3: checks HTTP Basic (consumer key and secret) and request shapes,
keeps orders, notes and products, and fails on purpose."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fakes.server import Faults, Journal, ShapeError, expect, json_error

API = "/wp-json/wc/v3"
STATUSES = {"pending", "processing", "on-hold", "completed", "cancelled", "refunded", "failed"}


@dataclass
class FakeWooCommerce:
    key: str = "ck_fake"
    secret: str = "cs_fake"
    faults: Faults = field(default_factory=Faults)
    journal: Journal = field(default_factory=Journal)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    products: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add_order(self, order_id: int, status: str = "processing") -> None:
        self.orders[order_id] = {"id": order_id, "status": status, "meta_data": []}
        self.notes[order_id] = []

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(API + "/orders/{id:int}", self.handle, methods=["GET", "PUT"]),
                Route(API + "/orders/{id:int}/notes", self.handle, methods=["GET", "POST"]),
                Route(API + "/products", self.handle, methods=["GET"]),
                Route(API + "/products/{id:int}", self.handle, methods=["PUT"]),
                Route(API + "/products/{parent:int}/variations/{id:int}", self.handle, methods=["PUT"]),
            ]
        )

    async def handle(self, request: Request) -> Response:
        try:
            response = self.faults.before() or await self._answer(request)
        except ShapeError as error:
            response = self.journal.refuse(error)
        await self.journal.record(request, response.status_code)
        return response

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.key}:{self.secret}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    async def _answer(self, request: Request) -> Response:
        if not self._authorised(request):
            return json_error(
                401,
                {
                    "code": "woocommerce_rest_cannot_view",
                    "message": "Sorry, you cannot list resources.",
                    "data": {"status": 401},
                },
            )
        path, params = request.url.path.removeprefix(API), request.path_params
        if path.startswith("/products"):
            return await self._products(request, params)
        order = self.orders.get(params["id"])
        if order is None:
            return json_error(
                404,
                {
                    "code": "woocommerce_rest_shop_order_invalid_id",
                    "message": "Invalid ID.",
                    "data": {"status": 404},
                },
            )
        if path.endswith("/notes"):
            if request.method == "GET":
                return JSONResponse(self.notes[order["id"]])
            body = await request.json()
            expect(isinstance(body.get("note"), str) and body["note"], "a note needs its text in `note`")
            expect(isinstance(body.get("customer_note", False), bool), "customer_note must be true or false")
            note = {
                "id": 1000 + sum(len(n) for n in self.notes.values()),
                "note": body["note"],
                "customer_note": body.get("customer_note", False),
            }
            self.notes[order["id"]].append(note)
            return self.faults.after_write() or JSONResponse(note, status_code=201)
        if request.method == "PUT":
            body = await request.json()
            expect(set(body) <= {"status", "meta_data"}, f"unexpected order fields {set(body)}")
            expect(
                body.get("status", "completed") in STATUSES, f"{body.get('status')!r} is not an order status"
            )
            if "status" in body:
                order["status"] = body["status"]
            for meta in body.get("meta_data", []):
                expect(set(meta) >= {"key", "value"}, "each meta_data entry needs key and value")
                order["meta_data"] = [m for m in order["meta_data"] if m["key"] != meta["key"]] + [meta]
            return self.faults.after_write() or JSONResponse(order)
        return JSONResponse(order)

    async def _products(self, request: Request, params: dict[str, Any]) -> Response:
        if request.method == "GET":
            sku = request.query_params.get("sku")
            return JSONResponse([p for p in self.products.values() if p["sku"] == sku])
        product = self.products.get(params["id"])
        if product is None or ("parent" in params and product.get("parent_id") != params["parent"]):
            return json_error(
                404,
                {
                    "code": "woocommerce_rest_product_invalid_id",
                    "message": "Invalid ID.",
                    "data": {"status": 404},
                },
            )
        body = await request.json()
        expect(set(body) <= {"manage_stock", "stock_quantity"}, f"unexpected product fields {set(body)}")
        expect(isinstance(body.get("stock_quantity"), int), "stock_quantity must be a whole number")
        product.update(body)
        return self.faults.after_write() or JSONResponse(product)
