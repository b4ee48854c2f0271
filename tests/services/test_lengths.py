"""Every value the API accepts fits where it is stored: maximal values through the real services.

PostgreSQL enforces VARCHAR(n), INTEGER and NUMERIC(p, s); SQLite stores anything, so there the same
writes only show that the values come back unchanged. The structural tests walk the request models'
constraints (every body and path parameter of api/routes, plus OperatorAction) and the ids the code
composes from them, and compare both with the columns of services/tables.py, so a request field
widened without its column, or a new bounded field nobody placed, fails here before it fails in
production.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo
from sqlalchemy import BigInteger, Engine, Integer, Numeric, SmallInteger, String
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator, TypeEngine
from sqlmodel import Session, SQLModel, col, select

import api.routes
from api.routes.warehouses import WarehouseIn
from domain.allocation import ShippingOption, WarehouseInfo
from domain.codes import COUNTRIES, CURRENCY_EXPONENTS
from domain.effects import AuditEntry, RecordPayment, RecordRefund, RequestShipment
from domain.models import (
    MAX_ORDER_TOTAL,
    Channel,
    ConfirmPayment,
    Discount,
    OrderStatus,
    OrderView,
    PlaceOrder,
    TimelineEvent,
)
from domain.notifications import NotificationKind, Notify
from domain.operator import Action, ActionParams, OperatorAction
from domain.regions import Region, region_of
from domain.shops import SHOP_URL_MAX_LENGTH
from domain.stock import SetStock
from services.audit import AuditService
from services.email import LANGUAGES, render_email
from services.inventory import InventoryService
from services.notifications import NotificationOutbox
from services.orders import OrderStore
from services.payments import PaymentService, refund_id
from services.shipments import ShipmentService
from services.tables import OrderEventRow, OrderRow, StockMove
from services.warehouses import BadCsv, WarehouseService, parse_stock_csv, unregistered
from workflows.parcels import Parcels

ROOT = Path(__file__).resolve().parents[2]  # the project: workflows/ is read as source below
_re_parser: Any = importlib.import_module("re._parser")  # the parser `re` itself compiles with


# -------------------------------------------------------------- what the request models accept
@dataclass(frozen=True)
class Bound:
    """The largest value one request field accepts: a string's length, an integer's range, or a
    decimal's integer digits; None where the model sets no limit."""

    path: str  # "Model.field", "Model.field[]" for list items, "path <name>" for URL parameters
    kind: Literal["str", "int", "decimal"]
    length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    digits: int | None = None


def pattern_length(pattern: str | re.Pattern[str]) -> int | None:
    _, longest = _re_parser.parse(pattern if isinstance(pattern, str) else pattern.pattern).getwidth()
    return None if longest >= _re_parser.MAXREPEAT else int(longest)


def _flat(metadata: list[Any]) -> list[Any]:
    """Constraints nested in Field(...) / Path(...) inside Annotated, flattened."""
    flat: list[Any] = []
    for item in metadata:
        flat.extend(_flat(list(item.metadata)) if isinstance(item, FieldInfo) else [item])
    return flat


def _least(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _int(constraint: Any, name: str) -> int:
    return int(getattr(constraint, name))


def _leaf(tp: Any, metadata: list[Any], path: str) -> Bound | None:
    constraints = _flat(metadata)
    if tp is str:
        lengths: list[int | None] = [None]
        for c in constraints:
            if isinstance(c, StringConstraints):
                lengths += [c.max_length, pattern_length(c.pattern) if c.pattern else None]
            elif isinstance(c, annotated_types.MaxLen):
                lengths.append(c.max_length)
            elif isinstance(getattr(c, "pattern", None), str):  # pydantic's general metadata (Path)
                lengths.append(pattern_length(c.pattern))
        return Bound(path, "str", length=_least(*lengths))
    if tp is int:
        lows = [_int(c, "ge") for c in constraints if isinstance(c, annotated_types.Ge)]
        lows += [_int(c, "gt") + 1 for c in constraints if isinstance(c, annotated_types.Gt)]
        highs = [_int(c, "le") for c in constraints if isinstance(c, annotated_types.Le)]
        highs += [_int(c, "lt") - 1 for c in constraints if isinstance(c, annotated_types.Lt)]
        return Bound(path, "int", minimum=max(lows, default=None), maximum=min(highs, default=None))
    if tp is Decimal:
        digits = next((c.max_digits for c in constraints if getattr(c, "max_digits", None)), None)
        places = next((c.decimal_places for c in constraints if getattr(c, "decimal_places", None)), 0)
        return Bound(path, "decimal", digits=digits - places if digits else None)
    return None  # bool, datetime: fixed width


def bounds_of(tp: Any, metadata: list[Any], path: str, seen: set[type]) -> Iterator[Bound]:
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extra = get_args(tp)
        yield from bounds_of(base, [*metadata, *extra], path, seen)
    elif origin in (Union, UnionType):
        for arg in get_args(tp):
            if arg is not type(None):
                yield from bounds_of(arg, metadata, path, seen)
    elif origin is list:
        yield from bounds_of(get_args(tp)[0], [], f"{path}[]", seen)
    elif origin is dict:
        key, value = get_args(tp)
        yield from bounds_of(key, [], f"{path}{{key}}", seen)
        yield from bounds_of(value, [], f"{path}{{value}}", seen)
    elif origin is Literal:
        yield Bound(path, "str", length=max(len(str(v)) for v in get_args(tp)))
    elif isinstance(tp, type) and issubclass(tp, Enum):
        yield Bound(path, "str", length=max(len(str(m.value)) for m in tp))
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        yield from model_bounds(tp, seen)
    elif (leaf := _leaf(tp, metadata, path)) is not None:
        yield leaf


def model_bounds(model: type[BaseModel], seen: set[type]) -> Iterator[Bound]:
    """One Bound per leaf field, named by the model that declares it (Address.city wherever it is)."""
    if model in seen:
        return
    seen.add(model)
    for name, field in model.model_fields.items():
        yield from bounds_of(field.annotation, list(field.metadata), f"{model.__name__}.{name}", seen)


def dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from dependants(sub)


def routes() -> Iterator[APIRoute]:
    for module in pkgutil.iter_modules(api.routes.__path__):
        router = getattr(importlib.import_module(f"api.routes.{module.name}"), "router", None)
        yield from (r for r in getattr(router, "routes", []) if isinstance(r, APIRoute))


@cache
def accepted_bounds() -> tuple[Bound, ...]:
    """Every body and path parameter of every route, and OperatorAction (built from the body and the
    caller's key name). Query parameters only filter reads: they are never stored."""
    seen: set[type] = set()
    found = list(model_bounds(OperatorAction, seen))
    for route in routes():
        params = [(p, "body") for d in dependants(route.dependant) for p in d.body_params]
        params += [(p, "path") for d in dependants(route.dependant) for p in d.path_params]
        for param, kind in params:
            where = f"body {route.path} {param.name}" if kind == "body" else f"path {param.name}"
            found += bounds_of(param.field_info.annotation, list(param.field_info.metadata), where, seen)
    return tuple(found)


# -------------------------------------------------------------- where each accepted value lands
STORED_IN: dict[str, tuple[str, ...]] = {
    "PlaceOrder.channel": ("orders.channel", "order_keys.channel"),
    "PlaceOrder.channel_order_id": ("orders.channel_order_id", "order_keys.channel_order_id"),
    "PlaceOrder.currency": ("orders.currency",),
    "PlaceOrder.shop_id": ("orders.shop_id", "order_keys.shop_id"),
    "PlaceOrder.total": ("orders.total", "payments.amount", "refunds.amount"),
    "Customer.email": ("notifications.recipient",),
    "Customer.language": ("notifications.language",),
    "Address.country": ("orders.country",),
    "OrderLine.sku": ("stock_moves.sku",),
    "OrderLine.quantity": ("stock_moves.quantity",),
    "ConfirmPayment.payment_id": ("payments.payment_id", "refunds.payment_id"),
    "ConfirmPayment.amount": ("payments.amount", "refunds.amount"),
    "ConfirmPayment.currency": ("payments.currency", "refunds.currency"),
    "ConfirmPayment.method": ("payments.method",),
    "ConfirmShipment.warehouse": ("stock_moves.warehouse", "shipment_requests.warehouse"),
    "CancelOrder.reason": ("refunds.reason",),
    "OperatorAction.action": ("audit_log.action",),
    "OperatorAction.actor": ("audit_log.actor",),
    "OperatorAction.reason": ("audit_log.reason", "refunds.reason"),
    "ActionRequest.reason": ("audit_log.reason", "refunds.reason"),
    "BatchActionRequest.reason": ("audit_log.reason", "refunds.reason"),
    "ActionParams.warehouse": ("stock_moves.warehouse", "shipment_requests.warehouse"),
    "path action": ("audit_log.action",),
    "path code": ("warehouses.code",),
    "path warehouse": ("stock.warehouse", "low_stock_events.warehouse"),
    "path sku": ("stock.sku", "low_stock_events.sku"),
    "WarehouseIn.name": ("warehouses.name",),
    "WarehouseIn.country": ("warehouses.country",),
    "WarehouseIn.daily_capacity": ("warehouses.daily_capacity",),
    "SetStock.on_hand": ("stock.on_hand",),
    "SetStock.safety_stock": ("stock.safety_stock", "low_stock_events.safety_stock"),
    "path shop_id": ("shops.shop_id", "shop_secrets.shop_id", "orders.shop_id", "order_keys.shop_id"),
    "ShopIn.channel": ("shops.channel",),
    "ShopIn.name": ("shops.name",),
    "ShopIn.url": ("shops.url",),
    "ShopIn.currency": ("shops.currency",),
    "ShopIn.language": ("shops.language",),
    "ShopIn.stripe_account_id": ("shops.stripe_account_id",),
    "ShopIn.stock_buffer": ("shops.stock_buffer",),
}

# Accepted values kept only inside JSON documents or unbounded text, or used only to find a row.
NOT_IN_A_BOUNDED_COLUMN: dict[str, str] = {
    "PlaceOrder.campaign": "orders.view (JSON)",
    "Customer.name": "orders.view (JSON), notifications.body_text (text)",
    "Customer.tier": "orders.view (JSON)",
    "Address.city": "orders.view, shipment_requests.address (JSON)",
    "Address.postal_code": "orders.view, shipment_requests.address (JSON)",
    "Address.line1": "orders.view, shipment_requests.address (JSON)",
    "OrderLine.unit_price": "orders.view, shipment_requests.lines (JSON)",
    "OrderLine.discounted_unit_price": "orders.view, shipment_requests.lines (JSON)",
    "OrderLine.channel_line_id": "orders.view, shipment_requests.lines (JSON)",
    "OrderLine.title": "orders.view, shipment_requests.lines (JSON)",
    "OrderLine.variant": "orders.view, shipment_requests.lines (JSON)",
    "Address.recipient": "orders.view, shipment_requests.address (JSON)",
    "Address.company": "orders.view, shipment_requests.address (JSON)",
    "Address.line2": "orders.view, shipment_requests.address (JSON)",
    "Address.province": "orders.view, shipment_requests.address (JSON)",
    "Address.phone": "orders.view, shipment_requests.address (JSON)",
    "Customer.channel_customer_id": "orders.view (JSON)",
    "Customer.locale": "orders.view (JSON)",
    "PlaceOrder.subtotal": "orders.view (JSON)",
    "PlaceOrder.shipping": "orders.view (JSON)",
    "PlaceOrder.tax": "orders.view (JSON)",
    "Discount.code": "orders.view (JSON)",
    "Discount.amount": "orders.view (JSON)",
    "ConfirmShipment.carrier": "orders.view (JSON), order_events.detail (text)",
    "ConfirmShipment.tracking_number": "orders.view (JSON), order_events.detail (text)",
    "TrackingUpdate.status": "orders.view (JSON)",
    "TrackingUpdate.tracking_number": "finds the parcel",
    "TrackingUpdate.detail": "order_events.detail (text)",
    "ActionParams.resolution": "audit_log.params (JSON)",
    "ActionParams.carrier": "audit_log.params, orders.view (JSON)",
    "ActionParams.tracking_number": "audit_log.params, orders.view (JSON)",
    "ActionParams.text": "audit_log.params (JSON), order_events.detail (text)",
    "ActionParams.customer_message": "audit_log.params (JSON), notifications.body_text (text)",
    "CancelOrder.customer_message": "orders.view (JSON), notifications.body_text (text)",
    "CancelOrder.origin": "decides whether the shop is told; kept in the workflow's history only",
    "BatchActionRequest.order_ids[]": "finds the orders",
    "path order_id": "finds the order",
    "path account_id": "finds the shop by shops.stripe_account_id; the delivery is filed under its shop_id",
    "path inbox_id": "finds the delivery",
    "WarehouseIn.shipping{key}": "warehouses.shipping (JSON)",
    # Each row is a domain.stock.StockRow (SetStock's bounds, the path patterns): see below.
    "body /inventory/import csv_text": "rows checked as StockRow (test_a_csv_import_refuses_...)",
    "Shipping.cost": "warehouses.shipping (JSON)",
    "Shipping.days": "warehouses.shipping (JSON)",
}

# Bounds a validator sets where the field's constraints cannot say it.
_COUNTRY = max(len(code) for code in COUNTRIES)
_CURRENCY = max(len(code) for code in CURRENCY_EXPONENTS)
VALIDATED: dict[str, dict[str, Any]] = {
    "Address.country": {"length": _COUNTRY},  # ISO 3166-1 alpha-2 (domain.models._country)
    "WarehouseIn.country": {"length": _COUNTRY},
    "PlaceOrder.currency": {"length": _CURRENCY},  # ISO 4217 (domain.models._currency)
    "ConfirmPayment.currency": {"length": _CURRENCY},
    "ShopIn.currency": {"length": _CURRENCY},
    "ShopIn.url": {"length": SHOP_URL_MAX_LENGTH},  # domain.shops.shop_url
    # max_digits=14 alone allows 14 integer digits; the pay update refuses any amount but the order
    # total, and PlaceOrder keeps totals below MAX_ORDER_TOTAL.
    "ConfirmPayment.amount": {"digits": len(str(MAX_ORDER_TOTAL - 1))},
}

# Known mismatches owned elsewhere; each has an xfail test below.
KNOWN_MISMATCHES: dict[str, str] = {}

# PostgreSQL's ranges (SQLite's INTEGER is always 64-bit).
INTEGER_RANGE = {
    SmallInteger: (-(2**15), 2**15 - 1),
    Integer: (-(2**31), 2**31 - 1),
    BigInteger: (-(2**63), 2**63 - 1),
}


def column_type(name: str) -> TypeEngine[Any]:
    """The SQL type of "table.column", seen through SQLModel's AutoString (a VARCHAR decorator)."""
    table, column_name = name.split(".")
    sql_type = SQLModel.metadata.tables[table].c[column_name].type
    return sql_type.impl_instance if isinstance(sql_type, TypeDecorator) else sql_type


def misfit(bound: Bound, target: str) -> str | None:
    """Why a value within `bound` may not fit column `target`, or None when it always fits."""
    sql_type = column_type(target)
    if isinstance(sql_type, String):
        if sql_type.length is None:
            return None
        if bound.kind != "str" or bound.length is None:
            return f"{bound.path} (no length limit) -> {target} VARCHAR({sql_type.length})"
        if bound.length > sql_type.length:
            return f"{bound.path} ({bound.length}) -> {target} VARCHAR({sql_type.length})"
        return None
    if isinstance(sql_type, Numeric):
        room = (sql_type.precision or 0) - (sql_type.scale or 0)
        if bound.digits is None or bound.digits > room:
            return f"{bound.path} ({bound.digits} integer digits) -> {target} NUMERIC holds {room}"
        return None
    if isinstance(sql_type, Integer):
        low, high = INTEGER_RANGE[type(sql_type)]
        if bound.minimum is None or bound.maximum is None or bound.minimum < low or bound.maximum > high:
            return f"{bound.path} ({bound.minimum}..{bound.maximum}) -> {target} {sql_type} {low}..{high}"
        return None
    return f"{target}: the test does not know {sql_type!r}"


def test_every_bounded_request_field_fits_the_columns_it_lands_in() -> None:
    found = accepted_bounds()
    paths = {bound.path for bound in found}
    placed = STORED_IN.keys() | NOT_IN_A_BOUNDED_COLUMN.keys() | KNOWN_MISMATCHES.keys()
    assert sorted(paths - placed) == [], "new request fields: say where each is stored (STORED_IN ...)"
    assert sorted(placed - paths) == [], "these fields are no longer accepted: drop them from the maps"

    misfits = [
        reason
        for bound in found
        if bound.path in STORED_IN
        for target in STORED_IN[bound.path]
        if (reason := misfit(replace(bound, **VALIDATED.get(bound.path, {})), target))
    ]
    assert misfits == []


def test_the_structural_check_catches_a_widened_field() -> None:
    widened = Bound("ConfirmPayment.payment_id", "str", length=101)
    assert (
        misfit(widened, "payments.payment_id")
        == "ConfirmPayment.payment_id (101) -> payments.payment_id VARCHAR(100)"
    )
    assert misfit(Bound("SetStock.on_hand", "int", minimum=0, maximum=2**31), "stock.on_hand") is not None
    assert misfit(Bound("x", "str", length=None), "orders.channel") is not None
    assert pattern_length(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$") == 32
    assert pattern_length(r"^[^@\s]+@[^@\s]+$") is None


# -------------------------------------------------------------- values the code composes
def accepted(path: str) -> Bound:
    return next(b for b in accepted_bounds() if b.path == path)


def longest(path: str) -> int:
    length = accepted(path).length
    assert length is not None
    return length


def width(name: str) -> int | None:
    sql_type = column_type(name)
    assert isinstance(sql_type, String)
    return sql_type.length


def fits(value: str, target: str) -> bool:
    limit = width(target)
    return limit is None or len(value) <= limit


def _templates(steps: list[str]) -> dict[str, list[str]]:
    """The workflow's f-strings (as ast.unparse spells them) and every value each can take."""
    values = {
        "f\"operator_{action.value.replace('-', '_')}\"": [
            f"operator_{action.value.replace('-', '_')}" for action in Action
        ],
        'f"{failed.step}_failed"': [f"{step}_failed" for step in steps],
    }
    return {ast.unparse(ast.parse(source, mode="eval").body): every for source, every in values.items()}


def workflow_strings() -> tuple[list[str], list[str]]:
    """(timeline event kinds, exception reasons) the workflows write, read from their source: the
    first argument of every record(...) (LiveOrder.record, workflows/state.py), the step name of every
    Steps.run(...), and every reason given to to_exception(...) or assigned to exception_reason."""
    calls: dict[str, list[ast.expr]] = {"_record": [], "_step": [], "_exception_reason": []}
    names = {"record": "_record", "_record": "_record", "_step": "_step", "to_exception": "_exception_reason"}
    for source in sorted((ROOT / "workflows").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
                func = node.func
                if func.attr in names:
                    calls[names[func.attr]].append(node.args[0])
                elif func.attr == "run" and ast.unparse(func.value).endswith("_steps"):
                    calls["_step"].append(node.args[0])
                elif func.attr == "_start" and len(node.args) >= 4:  # ShopCalls._start(..., done_kind)
                    calls["_record"].append(node.args[3])
            elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                reason = ("_exception_reason", "exception_reason")
                if any(isinstance(t, ast.Attribute) and t.attr in reason for t in targets):
                    calls["_exception_reason"].append(node.value)
    steps = [n.value for n in calls["_step"] if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    templates = _templates(steps)

    def values(nodes: list[ast.expr]) -> list[str]:
        out: list[str] = []
        for node in nodes:
            if isinstance(node, ast.Constant) and node.value is None:
                continue
            if isinstance(node, ast.Attribute) and node.attr == "exception_reason":
                continue  # restored from saved state (continue-as-new): written by the sources here
            if isinstance(node, ast.Name) and node.id in ("reason", "done_kind"):
                continue  # a parameter (to_exception, ShopCalls._start): its callers' values are read
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                out.append(node.value)
                continue
            source = ast.unparse(node)
            assert source in templates, f"teach test_lengths the values of {source}"
            out += templates[source]
        return out

    return values(calls["_record"]), values(calls["_exception_reason"])


def test_every_composed_id_and_label_fits_its_column() -> None:
    order_id = "o" * (width("orders.order_id") or 0)
    payment_id = "p" * longest("ConfirmPayment.payment_id")
    kinds, reasons = workflow_strings()

    assert fits(refund_id(order_id, payment_id), "refunds.refund_id")
    assert all(
        fits(notify_about(message_order(), order_id, kind).key, "notifications.kind")
        for kind in NotificationKind
    )
    # "WH-A+WH-B+...": one code per warehouse the order is split across, however many there are.
    assert width("orders.warehouse") is None
    assert {"placed", "cancelled", "refund_recorded", "operator_reassign_warehouse"} <= set(kinds)
    assert [k for k in kinds if not fits(k, "order_events.kind")] == []
    assert {"out_of_stock", "lock_stock_failed"} <= set(reasons)
    assert [r for r in reasons if not fits(r, "orders.exception_reason")] == []
    assert (width("order_events.kind") or 64) >= 64  # room for the kinds and reasons still to come
    assert (width("orders.exception_reason") or 64) >= 64
    assert fits(str(uuid.uuid4()), "audit_log.action_id")  # the Temporal client's update id
    assert all(fits(status.value, "orders.status") for status in OrderStatus)
    assert all(fits(region.value, "warehouses.region") for region in Region)
    money = column_type("orders.total")
    assert isinstance(money, Numeric)
    assert len(str(MAX_ORDER_TOTAL - 1)) <= (money.precision or 0) - (money.scale or 0)


# -------------------------------------------------------------- maximal values through the services
def text(length: int, head: str = "", fill: str = "x") -> str:
    return (head + fill * length)[:length]


@dataclass
class SplitOrder:
    order_id: str
    order: PlaceOrder
    codes: list[str]
    label: str
    view: OrderView


def split_order(engine: Engine) -> SplitOrder:
    """The largest order the API takes (100 lines of 10 000 units at a price just under the total
    limit), each line stocked in its own warehouse with a maximal code, locked across all of them."""
    lines = PlaceOrder.model_fields["lines"].metadata
    line_count = next(c.max_length for c in lines if isinstance(c, annotated_types.MaxLen))
    quantity = accepted("OrderLine.quantity").maximum
    assert quantity is not None
    codes = [text(longest("path code"), f"WH-{i:03d}-", "W") for i in range(line_count)]
    skus = [text(longest("path sku"), f"SKU-{i:03d}.", "S") for i in range(line_count)]
    warehouses = WarehouseService(engine)
    inventory = InventoryService(engine, warehouses)
    stock = SetStock.model_validate(
        {
            "on_hand": accepted("SetStock.on_hand").maximum,
            "safety_stock": accepted("SetStock.safety_stock").maximum,
        }
    )
    for code, sku in zip(codes, skus, strict=True):
        body = WarehouseIn.model_validate(
            {
                "name": text(longest("WarehouseIn.name"), code),
                "country": "DE",
                "daily_capacity": accepted("WarehouseIn.daily_capacity").maximum,
                "shipping": {"eu": {"cost": "99999999.99", "days": accepted("Shipping.days").maximum}},
            }
        )
        info = WarehouseInfo(
            code=code,
            country=body.country,
            region=region_of(body.country),
            daily_capacity=body.daily_capacity,
            shipping={r: ShippingOption(cost=s.cost, days=s.days) for r, s in body.shipping.items()},
        )
        warehouses.upsert(info, body.name)
        inventory.set_on_hand(code, sku, stock.on_hand, stock.safety_stock)

    price = MAX_ORDER_TOTAL / (line_count * quantity) - Decimal("0.01")  # the total stays under the limit
    order = PlaceOrder.model_validate(
        {
            "channel": max(Channel, key=len),
            "channel_order_id": text(longest("PlaceOrder.channel_order_id"), "#"),
            "customer": {
                "name": text(longest("Customer.name"), "Ana "),
                "email": text(longest("Customer.email") - len("@example.com"), "ana.") + "@example.com",
                "language": "zh-Hant",
                "tier": "standard",
                "channel_customer_id": text(
                    longest("Customer.channel_customer_id"), "gid://shopify/Customer/"
                ),
                "locale": "zh-Hant-TW",
            },
            "shipping_address": {
                "country": "DE",
                "city": text(longest("Address.city")),
                "postal_code": text(longest("Address.postal_code")),
                "line1": text(longest("Address.line1")),
                **{
                    name: text(longest(f"Address.{name}"))
                    for name in ("recipient", "company", "line2", "province", "phone")
                },
            },
            "lines": [
                {
                    "sku": sku,
                    "quantity": quantity,
                    "unit_price": str(price),
                    "discounted_unit_price": str(price),
                    "channel_line_id": text(longest("OrderLine.channel_line_id"), f"{sku}-"),
                    "title": text(longest("OrderLine.title")),
                    "variant": text(longest("OrderLine.variant")),
                }
                for sku in skus
            ],
            "currency": "USD",
            "campaign": text(longest("PlaceOrder.campaign"), "black-friday-"),
            "shop_id": text(longest("PlaceOrder.shop_id"), "shop-", "s"),
        }
    )
    order_id = text(width("orders.order_id") or 0, "ord_", "f")
    OrderStore(engine).claim_key(order.channel.value, order.channel_order_id, order_id, order.shop)
    inventory.reserve_order(order_id, order.lines, "DE")
    lock = inventory.lock_order(order_id, order.lines, "DE")
    assert lock.locked
    assert sorted(p.warehouse for p in lock.parts) == codes
    parcels = Parcels.from_parts(lock.parts, None)
    label = parcels.label
    assert label is not None
    now = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    view = OrderView(
        order_id=order_id,
        channel=order.channel,
        channel_order_id=order.channel_order_id,
        status=OrderStatus.PARTIALLY_SHIPPED,
        customer=order.customer,
        shipping_address=order.shipping_address,
        lines=order.lines,
        total=order.total,
        currency=order.currency,
        shop_id=order.shop,
        subtotal=order.total,
        discounts=[Discount(code=text(longest("Discount.code")), amount=Decimal(0))] * 50,
        created_at=now,
        updated_at=now,
        warehouse=label,
        shipments=parcels.views(),
    )
    return SplitOrder(order_id, order, codes, label, view)


def test_the_largest_order_split_across_maximal_warehouses_fits_the_read_model(engine: Engine) -> None:
    split = split_order(engine)
    kinds, reasons = workflow_strings()
    at = split.view.created_at
    detail = text(max(longest("ActionParams.text"), longest("TrackingUpdate.detail")))
    timeline = [
        TimelineEvent(at=at + timedelta(seconds=i), kind=k, detail=detail) for i, k in enumerate(kinds)
    ]
    update = {
        "exception_reason": max(reasons, key=len),
        "timeline": timeline,
        "cancel_reason": text(longest("OperatorAction.reason")),
    }
    view = split.view.model_copy(update=update)
    store = OrderStore(engine)

    store.project(view)

    assert store.get(split.order_id) == view
    with Session(engine) as session:
        row = session.get(OrderRow, split.order_id)
        assert row is not None
        assert (row.warehouse, row.exception_reason) == (split.label, max(reasons, key=len))
        assert row.shop_id == split.order.shop_id
        assert len(row.shop_id or "") == width("orders.shop_id")
        assert len(row.warehouse or "") > 100 * 32
        stored = session.exec(
            select(OrderEventRow.kind)
            .where(OrderEventRow.order_id == split.order_id)
            .order_by(col(OrderEventRow.seq))
        ).all()
        assert list(stored) == kinds


def test_every_parcel_of_the_largest_order_is_requested_and_moved(engine: Engine) -> None:
    split = split_order(engine)
    shipments = ShipmentService(engine)
    inventory = InventoryService(engine, WarehouseService(engine))
    for parcel in split.view.shipments:
        lines = [split.order.lines[item.line_no] for item in parcel.lines]
        request = RequestShipment(
            order_id=split.order_id,
            warehouse=parcel.warehouse,
            lines=lines,
            address=split.order.shipping_address,
            ship_by=split.view.created_at,
        )
        assert shipments.request(request) is True

    assert inventory.ship_order(split.order_id, split.codes[0]) > 0
    assert shipments.mark_shipped(split.order_id, split.codes[0]) is True
    assert inventory.release_order(split.order_id) > 0

    assert sorted(r.warehouse for r in shipments.for_order(split.order_id)) == split.codes
    with Session(engine) as session:
        moves = session.exec(select(StockMove).where(StockMove.order_id == split.order_id)).all()
    assert {"reserve", "lock_from_reserve", "lock", "ship", "release"} <= {m.kind for m in moves}
    assert {m.warehouse for m in moves} == set(split.codes)
    assert {e.warehouse for e in inventory.low_stock(open_only=False)} == set(split.codes)


def test_a_refund_of_the_longest_payment_id_with_an_operators_longest_reason_is_owed_once(
    engine: Engine,
) -> None:
    order_id = text(width("orders.order_id") or 0, "ord_", "f")
    payment = ConfirmPayment(
        payment_id=text(longest("ConfirmPayment.payment_id"), "pi_", "9"),
        amount=MAX_ORDER_TOTAL - Decimal("0.01"),
        currency="USD",
        method=text(longest("ConfirmPayment.method"), "card-"),
    )
    reason = text(max(longest("OperatorAction.reason"), longest("CancelOrder.reason")), "cancelled: ")
    service = PaymentService(engine)
    refund = RecordRefund(
        order_id=order_id, payment_id=payment.payment_id, amount=payment.amount, currency="USD", reason=reason
    )

    assert service.record_payment(RecordPayment(order_id=order_id, payment=payment)) is True
    first = service.record_refund(refund)
    again = service.record_refund(refund)

    assert first == again == refund_id(order_id, payment.payment_id)
    [row] = service.refunds_for(order_id)
    assert (row.refund_id, row.payment_id, row.reason, row.amount) == (
        first,
        payment.payment_id,
        reason,
        payment.amount,
    )


def test_the_longest_operator_action_fits_the_audit_trail(engine: Engine) -> None:
    action = max(Action, key=lambda a: len(a.value))
    request = OperatorAction(
        action=action,
        actor=text(longest("OperatorAction.actor"), "ops-"),
        reason=text(longest("OperatorAction.reason")),
        params=ActionParams(
            warehouse=text(longest("ActionParams.warehouse"), "WH-"),
            carrier=text(longest("ActionParams.carrier")),
            tracking_number=text(longest("ActionParams.tracking_number"), "TRK", "9"),
            text=text(longest("ActionParams.text")),
        ),
    )
    entry = AuditEntry(
        order_id=text(width("orders.order_id") or 0, "ord_", "f"),
        action_id=str(uuid.uuid4()),
        action=request.action.value,
        actor=request.actor,
        reason=request.reason,
        params=request.params.model_dump(mode="json", exclude_none=True),
        at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
    )
    audit = AuditService(engine)

    assert audit.record(entry) is True
    assert audit.record(entry) is False
    [stored] = audit.for_order(entry.order_id)
    assert stored.model_dump(exclude={"at"}) == entry.model_dump(exclude={"at"})


def message_order() -> PlaceOrder:
    """An order whose customer messages are as long as they get: the subject names the channel's
    order number, here the longest one made of '&' in case a template escapes it."""
    return PlaceOrder.model_validate(
        {
            "channel": "shopify",
            "channel_order_id": "&" * longest("PlaceOrder.channel_order_id"),
            "customer": {
                "name": text(longest("Customer.name")),
                "email": text(longest("Customer.email") - len("@example.com"), "ana.") + "@example.com",
            },
            "shipping_address": {"country": "DE", "city": "Berlin", "line1": "Invalidenstr. 1"},
            "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "9.90"}],
            "currency": "EUR",
        }
    )


def notify_about(order: PlaceOrder, order_id: str, kind: NotificationKind, language: str = "en") -> Notify:
    return Notify(
        order_id=order_id,
        kind=kind,
        reference=text(longest("path code"), "WH-"),  # a parcel's warehouse
        customer=order.customer.model_copy(update={"language": language}),
        channel_order_id=order.channel_order_id,
        lines=order.lines,
        total=order.total,
        currency=order.currency,
        cancel_reason=text(longest("OperatorAction.reason")),
        carrier=text(longest("ConfirmShipment.carrier")),
        tracking_number=text(longest("ConfirmShipment.tracking_number"), "TRK", "9"),
    )


def test_every_message_about_the_longest_order_fits_the_outbox(engine: Engine) -> None:
    order = message_order()
    outbox = NotificationOutbox(engine)
    written: dict[str, set[tuple[str, str]]] = {}  # order_id -> (kind, subject)
    due_times = (None, datetime(2026, 12, 4, 5, 56, tzinfo=UTC))
    for language, due in [(lang, at) for lang in LANGUAGES for at in due_times]:
        order_id = text(width("orders.order_id") or 0, f"ord_{language}_{due is None:d}_", "f")
        for kind in NotificationKind:
            notify = notify_about(order, order_id, kind, language).model_copy(update={"payment_due_at": due})
            email = render_email(notify, shop_name="Shop", pay_url="https://shop.example/pay")
            outbox.record(
                order_id=order_id,
                kind=notify.key,
                recipient=notify.customer.email,
                language=email.language,
                subject=email.subject,
                body_text=email.text,
            )
            written.setdefault(order_id, set()).add((notify.key, email.subject))

    assert {o: {(r.kind, r.subject) for r in outbox.for_order(o)} for o in written} == written
    assert len(written) == len(LANGUAGES) * 2


@pytest.mark.parametrize(
    "row",
    [
        f"{'W' * 33},SKU-1,1",
        f"WH-1,{'S' * 65},1",
        f"WH-1,SKU-1,{2**31}",
        f"WH-1,SKU-1,1,{2**31}",
        f"WH-1,SKU-1,{10**20}",
    ],
)
def test_a_csv_import_refuses_what_the_stock_table_cannot_hold(engine: Engine, row: str) -> None:
    csv_text = f"warehouse,sku,on_hand,safety_stock\n{row}\n"
    inventory = InventoryService(engine, WarehouseService(engine))
    try:
        with pytest.raises(BadCsv, match=r"^line 2, column "):
            inventory.import_counts(parse_stock_csv(csv_text))
    except DBAPIError as exc:  # what PostgreSQL says instead: a 500 for the client
        pytest.fail(f"the database refused the import: {type(exc.orig).__name__}")
    assert inventory.levels() == []


def test_the_largest_csv_row_fits_the_stock_table(engine: Engine) -> None:
    warehouses = WarehouseService(engine)
    inventory = InventoryService(engine, warehouses)
    code, sku = text(longest("path warehouse"), "WH-"), text(longest("path sku"), "SKU-")
    warehouses.upsert(unregistered(code))
    most = accepted("SetStock.on_hand").maximum
    rows = parse_stock_csv(f"warehouse,sku,on_hand,safety_stock\n{code},{sku},{most},{most}\n")

    assert inventory.import_counts(rows) == [sku]
    assert [(s.warehouse, s.sku, s.on_hand, s.safety_stock) for s in inventory.levels()] == [
        (code, sku, most, most)
    ]
