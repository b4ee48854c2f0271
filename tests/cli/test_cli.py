"""The `orderflow` CLI against a running API (uvicorn on loopback), a real Temporal dev server and DB."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, update
from sqlmodel import col
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from api.main import create_app
from cli.main import app as cli
from domain.access import Role
from services.auth import ApiKeyService
from services.db import transaction
from services.inventory import InventoryService
from services.mail_queue import MailQueue
from services.notifications import NotificationOutbox
from services.tables import Notification
from tests.support.payloads import body
from tests.support.temporal import make_settings, running_worker

runner = CliRunner()


@dataclass(frozen=True)
class Served:
    url: str
    db_url: str
    key: str  # an operator key


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """uvicorn in its own thread and loop: the CLI's blocking calls must not stall the worker's loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None, access_log=False))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    for _ in range(600):
        if server.started or not thread.is_alive():
            break
        await asyncio.sleep(0.05)
    assert server.started, "the API did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 30)
        sock.close()


@pytest.fixture
async def served(dev_env: WorkflowEnvironment, db_url: str, engine: Engine) -> AsyncIterator[Served]:
    settings = make_settings(
        temporal_address=dev_env.client.service_client.config.target_host,
        database_url=db_url,
        log_level="WARNING",
    )
    for sku in ("CASE-IP15", "USB-C-1M"):
        InventoryService(engine).set_on_hand("WH-SZ", sku, 10)
    key, _ = ApiKeyService(engine).create("ops@demo", Role.OPERATOR)
    async with running_worker(dev_env.client, settings, engine), serving(create_app(settings)) as url:
        yield Served(url=url, db_url=db_url, key=key)


async def orderflow(served: Served, *args: str, key: str | None = "operator") -> Result:
    """Run the CLI in a thread as an operator would (env vars set); key=None runs without a key."""
    env = {
        "ORDERFLOW_API_URL": served.url,
        "ORDERFLOW_API_KEY": served.key if key == "operator" else key,
        "ORDERS_DATABASE_URL": served.db_url,
    }
    return await asyncio.to_thread(lambda: runner.invoke(cli, list(args), env=env))


async def placed(served: Served, channel_order_id: str) -> str:
    headers = {"authorization": f"Bearer {served.key}"}
    async with httpx.AsyncClient(base_url=served.url, headers=headers) as client:
        response = await client.post("/orders", json=body(channel_order_id))
    assert response.status_code == 201, response.text
    return str(response.json()["order_id"])


async def test_a_created_key_works_until_it_is_revoked(served: Served) -> None:
    order_id = await placed(served, "SG-CLI-K1")
    created = await orderflow(served, "keys", "create", "--name", "mei@shop", "--role", "viewer")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert re.fullmatch(r"of_[0-9a-f]{12}_\S+", key)
    assert "cannot be shown again" in created.stderr
    key_id = key.split("_")[1]

    shown = await orderflow(served, "show", order_id, key=key)
    assert shown.exit_code == 0, shown.output
    assert order_id in shown.stdout
    assert "pending_payment" in shown.stdout
    listed = await orderflow(served, "keys", "list")
    assert re.search(rf"{key_id}\s+mei@shop\s+viewer\s+\S+ \S+ UTC\s+-", listed.stdout), listed.stdout
    denied = await orderflow(served, "act", "hold", order_id, "--reason", "x", key=key)
    assert (denied.exit_code, denied.stderr.strip()) == (1, "this API key's role (viewer) may not operate")

    revoked = await orderflow(served, "keys", "revoke", key_id)
    assert revoked.exit_code == 0, revoked.output
    after = await orderflow(served, "show", order_id, key=key)
    assert after.exit_code == 1
    assert after.stderr.strip() == "missing or invalid API key; send Authorization: Bearer <key>"
    again = await orderflow(served, "keys", "revoke", key_id)
    assert (again.exit_code, again.stderr.strip()) == (1, f"no active key {key_id}")


async def test_hold_then_release_prints_where_the_order_stands(served: Served) -> None:
    order_id = await placed(served, "SG-CLI-H1")
    held = await orderflow(served, "act", "hold", order_id, "--reason", "address looks fake")
    assert held.exit_code == 0, held.output
    assert re.search(rf"order\s+{order_id}\n", held.stdout)
    assert re.search(r"status\s+pending_payment\n", held.stdout)
    assert re.search(r"on hold\s+yes: address looks fake\n", held.stdout)
    assert re.search(r"last event\s+.+ UTC\s+operator_hold\s+ops@demo: address looks fake", held.stdout)

    released = await orderflow(served, "act", "release", order_id, "--reason", "buyer verified")
    assert released.exit_code == 0, released.output
    assert re.search(r"on hold\s+no\n", released.stdout)
    assert "ops@demo: buyer verified" in released.stdout

    shown = await orderflow(served, "show", order_id)
    assert shown.exit_code == 0, shown.output
    assert "ops@demo: address looks fake" in shown.stdout
    assert "10 Bayfront Ave, 018956 Singapore, SG" in shown.stdout


async def test_refused_and_incomplete_actions_say_why(served: Served) -> None:
    order_id = await placed(served, "SG-CLI-R1")
    assert (await orderflow(served, "act", "hold", order_id, "--reason", "fraud check")).exit_code == 0
    again = await orderflow(served, "act", "hold", order_id, "--reason", "twice")
    assert (again.exit_code, again.stderr.strip()) == (1, "refused: the order is already on hold")
    assert "Traceback" not in again.output

    note = await orderflow(served, "act", "note", order_id, "--reason", "called buyer")
    assert (note.exit_code, note.stderr.strip()) == (1, "invalid: params.text: note needs this parameter")
    missing = await orderflow(served, "act", "release", "ord_missing", "--reason", "x")
    assert (missing.exit_code, missing.stderr.strip()) == (1, "order ord_missing not found")
    unknown = await orderflow(served, "act", "teleport", order_id, "--reason", "x")
    assert unknown.exit_code == 2
    assert "'teleport' is not one of" in unknown.output


async def test_batch_cancel_from_a_file_reports_each_order(served: Served, tmp_path: Path) -> None:
    order_id = await placed(served, "SG-CLI-B1")
    ids = tmp_path / "ids.txt"
    ids.write_text(f"# peak season clean-up\n{order_id}\n\nord_unknown  # typo?\n{order_id}\n")
    result = await orderflow(served, "batch", "cancel", "--file", str(ids), "--reason", "clean-up")
    assert result.exit_code == 1, result.output
    assert re.search(rf"{order_id}\s+ok\s+cancelled\n", result.stdout)
    assert re.search(r"ord_unknown\s+not found\s+order ord_unknown not found\n", result.stdout)
    assert result.stdout.strip().endswith("cancel: 1 succeeded, 1 failed")


async def test_stuck_lists_a_held_order_with_its_web_ui_link(served: Served) -> None:
    fine = await placed(served, "SG-CLI-S1")
    held = await placed(served, "SG-CLI-S2")
    assert (await orderflow(served, "act", "hold", held, "--reason", "fraud check")).exit_code == 0

    result = await orderflow(served, "stuck")
    assert result.exit_code == 0, result.output
    listing, _, advice = result.stdout.partition("\nwhat to do\n")
    header, *rows = listing.splitlines()
    assert header.split() == ["ORDER", "STATUS", "SINCE", "WHY", "WAREHOUSE", "WEB", "UI"]
    assert len(rows) == 1
    assert rows[0].startswith(held)
    assert "<1m" in rows[0]
    assert "on hold since" in rows[0]
    assert rows[0].endswith(f"/namespaces/default/workflows/order-{held}")
    assert fine not in result.stdout
    assert f"  {held}  release:" in advice  # the held order's way out, as /orders/stuck suggests it

    later = await orderflow(served, "stuck", "--older-than", "1d")
    assert (later.exit_code, later.stdout.strip()) == (0, "no stuck orders")
    bad = await orderflow(served, "stuck", "--older-than", "soon")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("invalid: older_than:")


async def test_without_a_key_the_api_says_so(served: Served) -> None:
    result = await orderflow(served, "stuck", key=None)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "missing or invalid API key; send Authorization: Bearer <key>"
        " (set ORDERFLOW_API_KEY or pass --api-key)"
    )


def test_an_unreachable_api_exits_2() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening: refused
        result = runner.invoke(cli, ["--api-url", url, "--api-key", "of_x_y", "stuck"])
    assert (result.exit_code, result.stderr.strip()) == (2, f"cannot reach the API at {url}")
    assert "Traceback" not in result.output


# -------------------------------------------------------------- no API needed
def test_keys_create_prints_only_the_key_on_stdout_even_when_it_migrates(tmp_path: Path) -> None:
    """`KEY=$(orderflow keys create ...)` on a new database: the migration's log line is not the key."""
    env = {**os.environ, "ORDERS_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db", "ORDERS_LOG_LEVEL": "INFO"}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "keys", "create", "--name", "ci@shop", "--role", "operator"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"of_[0-9a-f]{12}_\S+\n", done.stdout), done.stdout
    assert "database migrated" in done.stderr


def test_help_shows_no_placeholder_after_a_plain_flag() -> None:
    shown = runner.invoke(cli, ["mail", "pending", "--help"])
    assert shown.exit_code == 0, shown.output
    assert re.search(r"^\s+--given-up\s+list the mail given up on instead", shown.stdout, re.MULTILINE)
    top = runner.invoke(cli, ["--help"])
    assert re.search(r"^\s+--help\s+Show this message and exit\.", top.stdout, re.MULTILINE)
    assert "<bool>" not in shown.stdout + top.stdout


def test_mail_pending_lists_queued_and_given_up_mail(db_url: str, engine: Engine) -> None:
    outbox, queue = NotificationOutbox(engine), MailQueue(engine)
    for order_id in ("ord_q", "ord_g"):
        outbox.record(
            order_id=order_id,
            kind="order_cancelled",
            recipient=f"{order_id}@example.com",
            language="en",
            subject="Your order was cancelled",
            body_text="Sorry.\n",
        )
    queue.claim("ord_q", "order_cancelled", "sender")
    queue.release("ord_q", "order_cancelled", "sender", "550 5.1.1 No such mailbox")
    queue.give_up_older_than(timedelta(0))  # gives up both: bring ord_q back
    with transaction(engine) as session:
        session.execute(
            update(Notification).where(col(Notification.order_id) == "ord_q").values(given_up_at=None)
        )
    env = {"ORDERS_DATABASE_URL": db_url}

    queued = runner.invoke(cli, ["mail", "pending"], env=env)
    assert queued.exit_code == 0, queued.output
    assert re.search(
        r"ord_q\s+order_cancelled\s+ord_q@example.com\s+<1m\s+queued\s+1 failed: 550", queued.stdout
    )
    assert "ord_g" not in queued.stdout
    assert "given up after 3d 0h unsent (ORDERS_MAIL_GIVE_UP_AFTER)" in queued.stderr

    given_up = runner.invoke(cli, ["mail", "pending", "--given-up"], env=env)
    assert given_up.exit_code == 0, given_up.output
    assert re.search(r"ord_g\s+order_cancelled\s+\S+\s+<1m\s+given up \S+ \S+ UTC", given_up.stdout)
    assert "ord_q" not in given_up.stdout


@pytest.mark.parametrize(("name", "says"), [("x" * 101, "at most 100 characters"), ("  ", "holder's name")])
def test_keys_create_refuses_a_name_the_audit_cannot_hold(db_url: str, name: str, says: str) -> None:
    created = runner.invoke(
        cli, ["keys", "create", "--name", name, "--role", "viewer"], env={"ORDERS_DATABASE_URL": db_url}
    )

    assert created.exit_code == 2
    assert "--name" in created.output
    assert says in created.output
    assert created.stdout == ""  # no key was made, so none is printed
