"""Calls to a Shopify store's GraphQL Admin API, each safe to repeat (Temporal retries activities).

Admin API version API_VERSION; shapes from shopify.dev/docs/api/admin-graphql/2025-07 (mutations
fulfillmentCreate, orderCancel, inventorySetQuantities; the Order, FulfillmentOrder and InventoryLevel
objects). Auth header X-Shopify-Access-Token. Idempotency: a fulfilment is looked up by tracking number
before one is created; a cancelled order is not cancelled again; stock is set with compareQuantity
(compare-and-set), and on a stale compare the level is read and the set retried once.
Moving API_VERSION to 2026-04 or later renames compareQuantity to changeFromQuantity (and the error
COMPARE_QUANTITY_STALE to CHANGE_FROM_QUANTITY_STALE); orderCancel's refundMethod replaced `refund`
in 2025-07.
"""

from __future__ import annotations

from typing import Any

import httpx

from integrations.channels.base import Outcome, ParcelNotice
from integrations.channels.shopify import queries
from integrations.errors import PermanentError, RetryableError
from integrations.http import TIMEOUT, send

API_VERSION = "2025-07"


def gid(kind: str, value: str | int) -> str:
    """A Shopify global id: ids from webhooks are numbers, GraphQL wants gid://shopify/<Kind>/<n>."""
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/{kind}/{text}"


class ShopifyClient:
    """One shop: `base_url` is https://<shop>.myshopify.com (a fake server's address in tests)."""

    def __init__(self, base_url: str, access_token: str, *, http: httpx.AsyncClient | None = None) -> None:
        self._url = f"{base_url.rstrip('/')}/admin/api/{API_VERSION}/graphql.json"
        self._http = http or httpx.AsyncClient(timeout=TIMEOUT)
        self._headers = {"X-Shopify-Access-Token": access_token, "Content-Type": "application/json"}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def graphql(self, query: str, variables: dict[str, Any], what: str) -> dict[str, Any]:
        """POST one GraphQL document; top-level errors classified (THROTTLED retryable, others permanent)."""
        response = await send(
            self._http,
            "POST",
            self._url,
            what,
            json={"query": query, "variables": variables},
            headers=self._headers,
        )
        body = response.json()
        errors = body.get("errors") or []
        if errors:
            codes = {(error.get("extensions") or {}).get("code") for error in errors}
            message = "; ".join(str(error.get("message")) for error in errors)[:300]
            if "THROTTLED" in codes or "INTERNAL_SERVER_ERROR" in codes:
                raise RetryableError(f"{what}: {message}", retry_after=1.0)
            raise PermanentError(f"{what}: {message}")
        data: dict[str, Any] = body.get("data") or {}
        return data

    async def create_fulfilment(self, order_id: str | int, parcel: ParcelNotice) -> Outcome:
        """Create the parcel's fulfilment, or find the one a previous attempt created."""
        data = await self.graphql(queries.FULFILMENT_STATE, {"id": gid("Order", order_id)}, "read order")
        order = data.get("order")
        if not order:
            raise PermanentError(f"Shopify order {order_id} not found")
        for fulfilment in order.get("fulfillments") or []:
            numbers = {info.get("number") for info in fulfilment.get("trackingInfo") or []}
            if parcel.tracking_number in numbers:
                return Outcome(id=fulfilment["id"], created=False)
        groups = line_items_by_fulfilment_order(order["fulfillmentOrders"]["nodes"], parcel.lines)
        fulfilment_input = {
            "lineItemsByFulfillmentOrder": groups,
            "trackingInfo": {
                "company": parcel.tracking_company,
                "number": parcel.tracking_number,
                **({"url": parcel.tracking_url} if parcel.tracking_url else {}),
            },
            "notifyCustomer": parcel.notify_customer,
        }
        result = (await self.graphql(queries.FULFILMENT_CREATE, {"fulfillment": fulfilment_input}, "fulfil"))[
            "fulfillmentCreate"
        ]
        _refuse_user_errors(result.get("userErrors"), "fulfillmentCreate")
        return Outcome(id=result["fulfillment"]["id"], created=True)

    async def cancel_order(
        self, order_id: str | int, *, reason: str = "OTHER", restock: bool = True, refund: bool = False
    ) -> Outcome:
        """Cancel the order on Shopify (an async job there); an order already cancelled is left alone."""
        order_gid = gid("Order", order_id)
        data = await self.graphql(queries.ORDER_CANCELLED_AT, {"id": order_gid}, "read order")
        if not data.get("order"):
            raise PermanentError(f"Shopify order {order_id} not found")
        if data["order"].get("cancelledAt"):
            return Outcome(id=order_gid, created=False)
        variables = {
            "orderId": order_gid,
            "reason": reason,
            "restock": restock,
            "notifyCustomer": False,
            "refundMethod": {"originalPaymentMethodsRefund": refund},
        }
        result = (await self.graphql(queries.ORDER_CANCEL, variables, "cancel order"))["orderCancel"]
        _refuse_user_errors(result.get("orderCancelUserErrors"), "orderCancel")
        return Outcome(id=(result.get("job") or {}).get("id") or order_gid, created=True)

    async def available(self, inventory_item_id: str, location_id: str) -> int:
        """The `available` quantity of an item at a location."""
        variables = {"id": gid("InventoryItem", inventory_item_id), "location": gid("Location", location_id)}
        data = await self.graphql(queries.INVENTORY_LEVEL, variables, "read stock")
        level = (data.get("inventoryItem") or {}).get("inventoryLevel")
        if not level:
            raise PermanentError(
                f"inventory item {inventory_item_id} is not stocked at location {location_id}"
            )
        return int(next(q["quantity"] for q in level["quantities"] if q["name"] == "available"))

    async def stock_by_sku(self, sku: str) -> tuple[str, str, int] | None:
        """(inventory item id, location id, available) of the variant with this SKU, None when the shop
        does not list it. UNSURE: the search syntax `sku:'<sku>'` matches Shopify's documented
        productVariants query filter, but a shop stocking the item at several locations gets the first
        level only (orderflow's stock is not split by Shopify location)."""
        escaped = sku.replace("\\", "\\\\").replace("'", "\\'")
        data = await self.graphql(queries.STOCK_BY_SKU, {"query": f"sku:'{escaped}'"}, "find variant")
        for variant in (data.get("productVariants") or {}).get("nodes") or []:
            if variant.get("sku") != sku:
                continue
            item = variant.get("inventoryItem") or {}
            for level in (item.get("inventoryLevels") or {}).get("nodes") or []:
                quantity = next(q["quantity"] for q in level["quantities"] if q["name"] == "available")
                return str(item["id"]), str(level["location"]["id"]), int(quantity)
        return None

    async def set_available(
        self, inventory_item_id: str, location_id: str, quantity: int, compare_quantity: int, reference: str
    ) -> int:
        """Set `available` to `quantity` if it still is `compare_quantity`; when the shop sold or changed
        stock in between, read the level and set once more against it. Returns the quantity compared."""
        compare = compare_quantity
        for attempt in range(2):
            variables = {
                "input": {
                    "name": "available",
                    "reason": "correction",
                    "referenceDocumentUri": f"orderflow://stock/{reference}",
                    "quantities": [
                        {
                            "inventoryItemId": gid("InventoryItem", inventory_item_id),
                            "locationId": gid("Location", location_id),
                            "quantity": quantity,
                            "compareQuantity": compare,
                        }
                    ],
                }
            }
            data = await self.graphql(queries.INVENTORY_SET, variables, "set stock")
            errors = data["inventorySetQuantities"].get("userErrors") or []
            if not any(error.get("code") == "COMPARE_QUANTITY_STALE" for error in errors):
                _refuse_user_errors(errors, "inventorySetQuantities")
                return compare
            if attempt == 0:
                compare = await self.available(inventory_item_id, location_id)
        raise RetryableError("inventorySetQuantities: the shop's stock kept changing; try again")


def line_items_by_fulfilment_order(
    fulfilment_orders: list[dict[str, Any]], lines: tuple[tuple[str, int], ...]
) -> list[dict[str, Any]]:
    """lineItemsByFulfillmentOrder for a parcel: each (line id, quantity) taken from the open
    fulfilment orders' remaining quantities; no lines means all that remains."""
    wanted = {gid("LineItem", line_id): quantity for line_id, quantity in lines}
    groups = []
    for fulfilment_order in fulfilment_orders:
        if fulfilment_order.get("status") not in ("OPEN", "IN_PROGRESS"):
            continue
        items = []
        for item in fulfilment_order["lineItems"]["nodes"]:
            line_gid, remaining = item["lineItem"]["id"], int(item["remainingQuantity"])
            take = remaining if not lines else min(remaining, wanted.get(line_gid, 0))
            if take > 0:
                items.append({"id": item["id"], "quantity": take})
                if lines:
                    wanted[line_gid] -= take
        if items:
            groups.append({"fulfillmentOrderId": fulfilment_order["id"], "fulfillmentOrderLineItems": items})
    missing = {line: quantity for line, quantity in wanted.items() if quantity > 0}
    if missing or not groups:
        raise PermanentError(f"nothing left to fulfil on Shopify for {missing or 'this order'}")
    return groups


def _refuse_user_errors(errors: list[dict[str, Any]] | None, what: str) -> None:
    if errors:
        message = "; ".join(
            f"{'.'.join(error.get('field') or [])}: {error.get('message')}" for error in errors
        )
        raise PermanentError(f"{what} refused: {message}"[:500])
