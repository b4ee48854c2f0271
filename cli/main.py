"""The `orderflow` command: order actions, batches and stuck orders over the API; API keys and unsent
mail in the database."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import pydantic
import typer
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from core.config import Settings
from core.logging import configure_logging
from domain.access import Role, key_name_problem
from domain.operator import Action
from services.auth import ApiKeyService
from services.db import create_schema, make_engine
from services.mail_queue import MailQueue
from services.tables import Notification

MAX_BATCH = 1000  # the API takes at most this many order ids in one request
PARAM_FLAGS = ("until", "warehouse", "resolution", "carrier", "tracking_number", "text")
ADDRESS_FLAGS = ("country", "city", "postal_code", "line1")

# rich_markup_mode=None: click's own help, which shows no `<bool>` placeholder after a plain flag.
app = typer.Typer(
    help="Operate orderflow orders from a terminal.", no_args_is_help=True, rich_markup_mode=None
)
keys_app = typer.Typer(
    help="API keys: run where the database is reachable (ORDERS_DATABASE_URL).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(keys_app, name="keys")
mail_app = typer.Typer(
    help="Customer mail in the outbox: run where the database is reachable (ORDERS_DATABASE_URL).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(mail_app, name="mail")


# -------------------------------------------------------------- HTTP
def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


@dataclass(frozen=True)
class Api:
    """Where the API is and how to call it; typer's context object for every HTTP command."""

    url: str
    key: str | None
    timeout: float

    def call(self, method: str, path: str, *, json: Any = None, params: Any = None) -> Any:
        headers = {"authorization": f"Bearer {self.key}"} if self.key else {}
        try:
            with httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout) as client:
                response = client.request(method, path, json=json, params=params)
        except httpx.TimeoutException:
            fail(f"the API at {self.url} did not answer within {self.timeout:g}s", code=2)
        except httpx.TransportError:
            fail(f"cannot reach the API at {self.url}", code=2)
        if response.is_error:
            fail(error_message(response, sent_key=self.key is not None))
        try:
            return response.json()
        except ValueError:
            fail(f"the API at {self.url} answered {path} with something other than JSON")


def error_message(response: httpx.Response, *, sent_key: bool) -> str:
    """The API's `detail` as one line an operator can act on."""
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    detail = str(body.get("detail") or response.reason_phrase)
    code = response.status_code
    if code == 409:
        return f"refused: {detail}"
    if code == 401 and not sent_key:
        return f"{detail} (set ORDERFLOW_API_KEY or pass --api-key)"
    if code == 404:
        return detail if detail.endswith("not found") else "not found"
    if code == 422 and isinstance(body.get("errors"), list):
        return "invalid: " + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in body["errors"])
    if code in (401, 403, 422):
        return detail
    return f"the API answered {code}: {detail}"


def action_params(flags: dict[str, Any]) -> dict[str, Any]:
    """The `params` body from a command's flags; the address flags become one nested address."""
    params = {name: flags[name] for name in PARAM_FLAGS if flags.get(name) is not None}
    address = {name: flags[name] for name in ADDRESS_FLAGS if flags.get(name) is not None}
    return {**params, "address": address} if address else params


def read_ids(path: Path) -> list[str]:
    """Order ids one per line; blank lines and `#` comments are skipped, repeats kept once."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return list(dict.fromkeys(line for line in lines if line))


# -------------------------------------------------------------- printing
def when(moment: str | datetime | None) -> str:
    if not moment:
        return "-"
    at = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return f"{at.astimezone(UTC) if at.tzinfo else at:%Y-%m-%d %H:%M} UTC"


def age(since: str, now: datetime) -> str:
    return span(now - datetime.fromisoformat(since))


def span(delta: timedelta) -> str:
    """A duration as people write it: 3d 0h, 4h 10m, 25m, <1m."""
    minutes = int(delta.total_seconds() // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {mins}m"
    return f"{mins}m" if mins else "<1m"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def fields(pairs: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"{label:<12}{value}" for label, value in pairs)


def event_line(event: dict[str, Any]) -> str:
    return f"{when(event['at'])}  {event['kind']}  {event.get('detail') or ''}".rstrip()


def batch_row(result: dict[str, Any]) -> tuple[str, str, str]:
    outcome = {200: "ok", 404: "not found", 409: "refused"}.get(result["status_code"])
    detail = result["detail"] or result["status"] or ""
    return result["order_id"], outcome or f"error {result['status_code']}", detail


def stuck_row(order: dict[str, Any], now: datetime) -> tuple[str, ...]:
    why = "; ".join(order["reasons"])
    since = age(order["since"], now)
    return order["order_id"], order["status"], since, why, order["warehouse"] or "-", order["ui_url"]


def summary(view: dict[str, Any]) -> list[tuple[str, str]]:
    hold = f"yes: {view.get('hold_reason') or 'no reason given'}" if view.get("on_hold") else "no"
    timeline = view.get("timeline") or []
    return [
        ("order", view["order_id"]),
        ("status", view["status"]),
        ("on hold", hold),
        ("warehouse", view.get("warehouse") or "-"),
        ("last event", event_line(timeline[-1]) if timeline else "-"),
    ]


def details(view: dict[str, Any]) -> list[tuple[str, str]]:
    address, customer = view["shipping_address"], view["customer"]
    shipment = view.get("shipment")
    optional = [
        ("exception", view.get("exception_reason")),
        ("cancelled", view.get("cancel_reason")),
        ("payment due", view.get("payment_due_at") and when(view["payment_due_at"])),
        ("ship by", view.get("ship_by") and when(view["ship_by"])),
        ("confirm by", view.get("confirm_by") and when(view["confirm_by"])),
        ("shipment", shipment and f"{shipment['carrier']} {shipment['tracking_number']}"),
    ]
    return [
        ("channel", f"{view['channel']} {view['channel_order_id']}"),
        ("customer", f"{customer['name']} <{customer['email']}>"),
        ("ship to", f"{address['line1']}, {address['postal_code']} {address['city']}, {address['country']}"),
        (
            "lines",
            ", ".join(f"{line['quantity']} x {line['sku']} @ {line['unit_price']}" for line in view["lines"]),
        ),
        ("total", f"{view['total']} {view['currency']}"),
        *((label, str(value)) for label, value in optional if value),
    ]


# -------------------------------------------------------------- commands
@app.callback()
def main(
    ctx: typer.Context,
    api_url: Annotated[str, typer.Option(envvar="ORDERFLOW_API_URL", help="the orderflow API")] = (
        "http://127.0.0.1:8000"
    ),
    api_key: Annotated[
        str | None, typer.Option(envvar="ORDERFLOW_API_KEY", help="an operator or viewer API key")
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the API")] = 30.0,
) -> None:
    # Logs (a migration at start-up, warnings) go to stderr, so stdout holds only the answer.
    configure_logging(os.environ.get("ORDERS_LOG_LEVEL", "WARNING"))
    ctx.obj = Api(url=api_url.rstrip("/"), key=api_key or None, timeout=timeout)


ActionArg = Annotated[Action, typer.Argument(help="what to do", show_default=False)]
ReasonOpt = Annotated[str, typer.Option(help="why; kept in the order's audit trail")]
Until = Annotated[str | None, typer.Option(help="extend-payment: new deadline, ISO 8601 with timezone")]
Warehouse = Annotated[str | None, typer.Option(help="reassign-warehouse: the warehouse code")]
Resolution = Annotated[
    str | None, typer.Option(help="resolve-exception: wait-for-restock or cancel-and-refund")
]
Carrier = Annotated[str | None, typer.Option(help="mark-shipped: the carrier")]
Tracking = Annotated[str | None, typer.Option(help="mark-shipped: the tracking number")]
Text = Annotated[str | None, typer.Option(help="note: the note's text")]
Country = Annotated[str | None, typer.Option(help="change-address: ISO country code")]
City = Annotated[str | None, typer.Option(help="change-address: city")]
PostalCode = Annotated[str | None, typer.Option(help="change-address: postal code")]
Line1 = Annotated[str | None, typer.Option(help="change-address: street and number")]


@app.command()
def act(
    ctx: typer.Context,
    action: ActionArg,
    order_id: Annotated[str, typer.Argument(help="the order to act on")],
    reason: ReasonOpt,
    until: Until = None,
    warehouse: Warehouse = None,
    resolution: Resolution = None,
    carrier: Carrier = None,
    tracking_number: Tracking = None,
    text: Text = None,
    country: Country = None,
    city: City = None,
    postal_code: PostalCode = None,
    line1: Line1 = None,
) -> None:
    """Apply an operator action to one order and show where the order now stands."""
    params = action_params(ctx.params)  # the flags below, by name
    body = {"reason": reason, "params": params}
    view = ctx.obj.call("POST", f"/orders/{quote(order_id, safe='')}/actions/{action.value}", json=body)
    typer.echo(fields(summary(view)))


@app.command()
def batch(
    ctx: typer.Context,
    action: ActionArg,
    file: Annotated[
        Path, typer.Option(help="order ids, one a line; # comments", exists=True, dir_okay=False)
    ],
    reason: ReasonOpt,
    until: Until = None,
    warehouse: Warehouse = None,
    resolution: Resolution = None,
    carrier: Carrier = None,
    tracking_number: Tracking = None,
    text: Text = None,
    country: Country = None,
    city: City = None,
    postal_code: PostalCode = None,
    line1: Line1 = None,
) -> None:
    """Apply one action to every order in a file, each on its own; exit 1 if any was not done."""
    order_ids = read_ids(file)
    if not order_ids:
        fail(f"no order ids in {file}")
    params = action_params(ctx.params)  # the flags below, by name
    results: list[dict[str, Any]] = []
    for start in range(0, len(order_ids), MAX_BATCH):
        body = {"order_ids": order_ids[start : start + MAX_BATCH], "reason": reason, "params": params}
        results += ctx.obj.call("POST", f"/orders/actions/{action.value}", json=body)["results"]
    typer.echo(table(("ORDER", "RESULT", "DETAIL"), [batch_row(r) for r in results]))
    failed = sum(not r["ok"] for r in results)
    typer.echo(f"{action.value}: {len(results) - failed} succeeded, {failed} failed")
    if failed:
        raise typer.Exit(1)


@app.command()
def stuck(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option(help="only orders stuck at least this long: 30m, 4h, 2d")] = "0s",
) -> None:
    """Orders in exception, on hold or past a deadline, oldest first, with their Web UI link."""
    found = ctx.obj.call("GET", "/orders/stuck", params={"older_than": older_than})
    if not found:
        typer.echo("no stuck orders")
        return
    now = datetime.now(UTC)
    rows = [stuck_row(order, now) for order in found]
    typer.echo(table(("ORDER", "STATUS", "SINCE", "WHY", "WAREHOUSE", "WEB UI"), rows))
    advice = [(order["order_id"], order.get("suggested_actions") or []) for order in found]
    if any(actions for _, actions in advice):
        typer.echo("\nwhat to do")
        for order_id, actions in advice:
            for action in actions:
                typer.echo(f"  {order_id}  {action}")


@app.command()
def show(ctx: typer.Context, order_id: Annotated[str, typer.Argument(help="the order")]) -> None:
    """One order: where it stands, what it holds, and its timeline."""
    view = ctx.obj.call("GET", f"/orders/{quote(order_id, safe='')}")
    typer.echo(fields([*summary(view)[:-1], *details(view)]))
    typer.echo("\ntimeline")
    for event in view.get("timeline") or []:
        typer.echo(f"  {event_line(event)}")


# -------------------------------------------------------------- database commands
def settings_or_fail() -> Settings:
    try:
        return Settings()
    except pydantic.ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        fail(f"invalid ORDERS_* settings: {errors}")


@contextmanager
def database(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    try:
        create_schema(engine)
        yield engine
    except OperationalError as exc:
        safe = make_url(url).render_as_string(hide_password=True)
        fail(f"cannot use the database at {safe}: {str(exc.orig).strip().splitlines()[0]}", code=2)
    finally:
        engine.dispose()


@contextmanager
def key_service() -> Iterator[ApiKeyService]:
    with database(settings_or_fail().database_url) as engine:
        yield ApiKeyService(engine)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="who or what holds the key; shown as the actor in audits")],
    role: Annotated[Role, typer.Option(help="what the key may do")],
) -> None:
    """Create a key. The key goes to stdout, the rest to stderr, so `$(orderflow keys create ...)` works."""
    problem = key_name_problem(name)
    if problem is not None:
        raise typer.BadParameter(problem, param_hint="--name")
    with key_service() as keys:
        key, caller = keys.create(name, role)
    typer.echo(f"created key {caller.key_id} for {caller.name} ({caller.role.value}):", err=True)
    typer.echo(key)
    typer.echo("store it now: it cannot be shown again", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """Every key: id, holder, role, when created, when revoked."""
    with key_service() as keys:
        rows = [(k.key_id, k.name, k.role, when(k.created_at), when(k.revoked_at)) for k in keys.all_keys()]
    typer.echo(table(("KEY ID", "NAME", "ROLE", "CREATED", "REVOKED"), rows) if rows else "no API keys")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="the id from `orderflow keys list`")]) -> None:
    """Revoke a key: requests with it are refused (401) from now on."""
    with key_service() as keys:
        revoked = keys.revoke(key_id)
    if not revoked:
        fail(f"no active key {key_id}")
    typer.echo(f"revoked key {key_id}")


# -------------------------------------------------------------- unsent mail (database)
def mail_row(row: Notification, now: datetime) -> tuple[str, ...]:
    state = f"given up {when(row.given_up_at)}" if row.given_up_at else "queued"
    tried = (
        f"{row.attempts} failed" + (f": {row.last_error}" if row.last_error else "") if row.attempts else "-"
    )
    written = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)  # SQLite
    return row.order_id, row.kind, row.recipient, span(now - written), state, tried


@mail_app.command("pending")
def mail_pending(
    given_up: Annotated[bool, typer.Option("--given-up", help="list the mail given up on instead")] = False,
) -> None:
    """Customer mail not sent yet, oldest first: queued (the mail dispatcher sends it once SMTP works)
    or, with --given-up, unsent past ORDERS_MAIL_GIVE_UP_AFTER and never to be sent."""
    settings = settings_or_fail()
    with database(settings.database_url) as engine:
        rows = MailQueue(engine).pending(given_up=given_up)
    if not rows:
        typer.echo("no mail given up" if given_up else "no unsent mail")
        return
    now = datetime.now(UTC)
    headers = ("ORDER", "KIND", "TO", "AGE", "STATE", "ATTEMPTS")
    typer.echo(table(headers, [mail_row(row, now) for row in rows]))
    if not given_up:
        typer.echo(
            f"given up after {span(settings.mail_give_up_after)} unsent (ORDERS_MAIL_GIVE_UP_AFTER)", err=True
        )


if __name__ == "__main__":
    app()
