"""Calls to a WooCommerce store's REST API v3, each safe to repeat (Temporal retries activities).

Endpoints from woocommerce.github.io/woocommerce-rest-api-docs (v3): GET/PUT /orders/<id>,
GET/POST /orders/<id>/notes, GET /products?sku=, PUT /products/<id> and
/products/<parent>/variations/<id>. Auth: HTTP Basic with the consumer key and secret (HTTPS only in
production). WooCommerce has no idempotency key, so every write looks before it writes: tracking
already in the order's meta_data or notes is not added twice, a cancelled (or refunded) order is not
cancelled again.
Tracking lives in the meta key TRACKING_META (a list, one entry per parcel; split orders have several).
"""

from __future__ import annotations

from typing import Any

import httpx

from integrations.channels.base import Outcome, ParcelNotice
from integrations.errors import PermanentError
from integrations.http import TIMEOUT, send

TRACKING_META = "_orderflow_tracking"
LEFT_ALONE_ON_CANCEL = frozenset({"cancelled", "refunded"})


class WooCommerceClient:
    """One store: `base_url` is the site's address (https://shop.example), the API lives under it."""

    def __init__(
        self, base_url: str, consumer_key: str, consumer_secret: str, *, http: httpx.AsyncClient | None = None
    ) -> None:
        self._api = f"{base_url.rstrip('/')}/wp-json/wc/v3"
        self._http = http or httpx.AsyncClient(timeout=TIMEOUT)
        self._auth = httpx.BasicAuth(consumer_key, consumer_secret)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        response = await send(self._http, method, f"{self._api}{path}", what, auth=self._auth, **kwargs)
        return response.json()

    async def order(self, order_id: str | int) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/orders/{order_id}", "read order")
        return result

    async def complete_with_tracking(
        self, order_id: str | int, parcel: ParcelNotice, *, last_parcel: bool = True
    ) -> Outcome:
        """Add this parcel's tracking to the order's meta_data and leave a note the buyer sees; the last
        parcel of an order also marks it completed (WooCommerce has no partial fulfilment, and
        "completed" mails the buyer). A parcel whose tracking number is already there changes nothing."""
        order = await self.order(order_id)
        parcels = tracking_entries(order)
        created = False
        if all(entry.get("tracking_number") != parcel.tracking_number for entry in parcels):
            entry = {
                "tracking_provider": parcel.tracking_company,
                "tracking_number": parcel.tracking_number,
                "tracking_link": parcel.tracking_url,
            }
            body: dict[str, Any] = {"meta_data": [{"key": TRACKING_META, "value": [*parcels, entry]}]}
            if last_parcel:
                body["status"] = "completed"
            await self._call("PUT", f"/orders/{order_id}", "complete order", json=body)
            created = True
        note = f"Shipped with {parcel.tracking_company}, tracking number {parcel.tracking_number}"
        if parcel.tracking_url:
            note += f": {parcel.tracking_url}"
        await self.add_note(order_id, note, customer_note=parcel.notify_customer)
        return Outcome(id=parcel.tracking_number, created=created)

    async def add_note(self, order_id: str | int, note: str, *, customer_note: bool = False) -> Outcome:
        """Add an order note unless the same text is already on the order."""
        notes = await self._call("GET", f"/orders/{order_id}/notes", "read notes")
        for existing in notes:
            if existing.get("note") == note:
                return Outcome(id=str(existing.get("id")), created=False)
        body = {"note": note, "customer_note": customer_note}
        created = await self._call("POST", f"/orders/{order_id}/notes", "add note", json=body)
        return Outcome(id=str(created.get("id")), created=True)

    async def cancel_order(self, order_id: str | int) -> Outcome:
        """Set the order to cancelled (WooCommerce restocks it itself). An order already cancelled, or
        refunded (the store gave the money back: "cancelled" would hide that from the seller's books),
        is left alone: `created` False."""
        order = await self.order(order_id)
        if order.get("status") in LEFT_ALONE_ON_CANCEL:
            return Outcome(id=str(order_id), created=False)
        await self._call("PUT", f"/orders/{order_id}", "cancel order", json={"status": "cancelled"})
        return Outcome(id=str(order_id), created=True)

    async def set_stock(self, sku: str, quantity: int) -> Outcome:
        """Set a product's (or variation's) stock_quantity by SKU; an equal quantity is not written again."""
        found = await self._call("GET", "/products", "find product", params={"sku": sku})
        if not found:
            raise PermanentError(f"no WooCommerce product has the SKU {sku!r}")
        product = found[0]
        if product.get("manage_stock") is True and product.get("stock_quantity") == quantity:
            return Outcome(id=str(product["id"]), created=False)
        path = f"/products/{product['id']}"
        if product.get("type") == "variation" and product.get("parent_id"):
            path = f"/products/{product['parent_id']}/variations/{product['id']}"
        await self._call("PUT", path, "set stock", json={"manage_stock": True, "stock_quantity": quantity})
        return Outcome(id=str(product["id"]), created=True)


def tracking_entries(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The parcels orderflow already wrote on the order (meta key TRACKING_META)."""
    for meta in order.get("meta_data") or []:
        if meta.get("key") == TRACKING_META and isinstance(meta.get("value"), list):
            return [entry for entry in meta["value"] if isinstance(entry, dict)]
    return []
