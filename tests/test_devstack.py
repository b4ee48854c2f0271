"""The one-command dev stack as a newcomer meets it: up, demo stock, an order, Ctrl-C, restart, kept."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from scripts.devstack import DEMO_ORDER, DEMO_STOCK

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def _devstack(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.devstack"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            # SIGTERM first: the supervisor then stops its children, which live in their own sessions.
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_for(what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"devstack exited with {proc.returncode} before {what}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {STARTUP_TIMEOUT:.0f} s:\n{_tail(log)}")
        time.sleep(0.3)


def _ok(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-60:])


def _ctrl_c(proc: subprocess.Popen[bytes], log: Path, ports: list[int]) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
    try:
        code = proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"devstack still running {STOP_TIMEOUT:.0f} s after Ctrl-C:\n{_tail(log)}")
    assert code == 0, _tail(log)
    assert [port for port in ports if _listening(port)] == [], "a child is still listening after Ctrl-C"


def test_one_command_runs_the_stack_and_keeps_orders_across_restarts(tmp_path: Path) -> None:
    temporal_port, ui_port, api_port = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "ORDERS_DEV_DATA_DIR": str(tmp_path / "data"),
        "ORDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'orderflow.db'}",
        "ORDERS_DEV_TEMPORAL_PORT": str(temporal_port),
        "ORDERS_DEV_UI_PORT": str(ui_port),
        "ORDERS_DEV_API_PORT": str(api_port),
        "ORDERS_WORKER_METRICS_ADDRESS": f"127.0.0.1:{_free_port()}",
        "ORDERS_API_METRICS_ADDRESS": f"127.0.0.1:{_free_port()}",
    }
    api = f"http://127.0.0.1:{api_port}"
    warehouse, sku, _ = DEMO_STOCK[0]
    recounted_warehouse, recounted_sku, _ = DEMO_STOCK[-1]
    log = tmp_path / "devstack.log"

    key_file = tmp_path / "data" / "demo-operator-key"
    with httpx.Client(base_url=api, timeout=10.0) as http:
        with _devstack(env, log) as proc:
            _wait_for("the banner", lambda: "Ctrl-C stops everything" in log.read_text(), proc, log)
            key = key_file.read_text().strip()
            assert f"Operator API key {key}" in log.read_text(), "the banner shows the demo key"
            assert http.get("/orders").status_code == 401, "the API needs a key"
            http.headers["authorization"] = f"Bearer {key}"
            assert _ok(http, "/healthz")
            assert _ok(http, f"/inventory/{warehouse}/{sku}"), "demo stock is loaded"
            assert _ok(http, f"/inventory/{recounted_warehouse}/{recounted_sku}")

            placed = http.post("/orders", json=DEMO_ORDER, timeout=30.0)
            assert placed.status_code == 201, placed.text
            assert placed.json()["status"] == "pending_payment"
            order_id = placed.json()["order_id"]

            recount = http.put(f"/inventory/{recounted_warehouse}/{recounted_sku}", json={"on_hand": 7})
            assert recount.status_code == 200, recount.text

            ui = httpx.get(f"http://127.0.0.1:{ui_port}/", timeout=10.0)
            assert ui.status_code == 200

            _ctrl_c(proc, log, [temporal_port, ui_port, api_port])

        with _devstack(env, log) as proc:
            _wait_for(
                "the banner again", lambda: log.read_text().count("Ctrl-C stops everything") == 2, proc, log
            )

            again = http.get(f"/orders/{order_id}", timeout=30.0)
            assert again.status_code == 200, again.text
            assert again.json()["status"] == "pending_payment"
            stock = http.get(f"/inventory/{recounted_warehouse}/{recounted_sku}")
            assert stock.json()["on_hand"] == 7, "a restart must not reset counted stock"

            _ctrl_c(proc, log, [temporal_port, ui_port, api_port])


def _child_pid(supervisor: subprocess.Popen[bytes], script: str) -> int:
    """The pid of the supervisor's child running `script` (found through /proc, Linux)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == supervisor.pid and script.encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no child running {script}")


def test_a_crashed_worker_is_restarted_and_the_banner_comes_last(tmp_path: Path) -> None:
    temporal_port, ui_port, api_port = _free_port(), _free_port(), _free_port()
    worker_metrics, api_metrics = f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        "ORDERS_DEV_DATA_DIR": str(tmp_path / "data"),
        "ORDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'orderflow.db'}",
        "ORDERS_DEV_TEMPORAL_PORT": str(temporal_port),
        "ORDERS_DEV_UI_PORT": str(ui_port),
        "ORDERS_DEV_API_PORT": str(api_port),
        "ORDERS_WORKER_METRICS_ADDRESS": worker_metrics,
        "ORDERS_API_METRICS_ADDRESS": api_metrics,
    }
    log = tmp_path / "devstack.log"
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30.0) as http,
        _devstack(env, log) as proc,
    ):
        _wait_for("the banner", lambda: "Ctrl-C stops everything" in log.read_text(), proc, log)
        time.sleep(2.0)  # anything printed after the banner would bury it
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        assert lines[-1] == "Ctrl-C stops everything.", _tail(log)
        metrics = (
            f"Metrics          http://{worker_metrics}/metrics (worker), http://{api_metrics}/metrics (API)"
        )
        assert f"  {metrics}" in lines[-10:], "the banner names the configured metrics ports"
        assert "Context impl" not in log.read_text(), "alembic's start-up lines are quiet"

        os.kill(_child_pid(proc, "worker.py"), signal.SIGKILL)
        _wait_for("the worker's restart", lambda: "devstack: worker restarted" in log.read_text(), proc, log)
        assert "devstack: worker was killed by signal 9; restarting it in 1 s" in log.read_text()

        http.headers["authorization"] = f"Bearer {(tmp_path / 'data' / 'demo-operator-key').read_text()}"
        placed = http.post("/orders", json=DEMO_ORDER)  # placement runs on the restarted worker
        assert placed.status_code == 201, placed.text
        assert placed.json()["status"] == "pending_payment"
        assert proc.poll() is None, "the stack keeps running"
        _ctrl_c(proc, log, [temporal_port, ui_port, api_port])
