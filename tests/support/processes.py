"""Real processes on loopback for reliability tests: the Temporal dev server and the worker.

Each child runs in its own session (process group), so a kill reaches the whole group and nothing
outlives a test: every `start()` has a `kill()`/`stop()` in a `finally`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import IO

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from tests.support.temporal import temporal_binary
from workflows.search_attributes import cli_flags

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """One child process in its own process group, its output appended to a log file."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: Mapping[str, str] | None = None):
        self.name = name
        self.args = args
        self.log_path = log_path
        self.env = dict(env) if env is not None else dict(os.environ)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.alive(), f"{self.name} is already running"
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log.write(f"\n===== {self.name} start #{self.starts + 1} at {time.time():.3f}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group and reap it: a crash, no chance to clean up."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        self._close_log()

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM the group, wait up to `grace` seconds, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait()
        self._signal_group(signal.SIGKILL)  # anything the leader left behind in its group
        self._close_log()
        return self.proc.returncode

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class DevServer(Child):
    """`temporal server start-dev` on loopback with a SQLite file, our search attributes registered.
    The ports are fixed at construction, so a restart comes back at the same address."""

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.db_file = tmp_path / "temporal.db"
        args = [temporal_binary("temporal"), "server", "start-dev", "--db-filename", str(self.db_file)]
        args += ["--ip", "127.0.0.1", "--port", str(self.port), "--headless"]
        args += ["--http-port", str(free_port()), "--metrics-port", str(free_port())]
        args += ["--log-level", "warn", *cli_flags()]
        super().__init__("temporal", args, tmp_path / "temporal.log")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def connect(self, within: float = READY_TIMEOUT) -> Client:
        """A client once the frontend answers (after a start or a restart)."""
        deadline = time.monotonic() + within
        while True:
            if not self.alive():
                raise AssertionError(f"the Temporal dev server exited:\n{self.tail()}")
            try:
                client = await asyncio.wait_for(
                    Client.connect(self.address, data_converter=pydantic_data_converter), timeout=5
                )
                await client.workflow_service.get_system_info(GetSystemInfoRequest(), timeout=None)
                return client
            except (RuntimeError, RPCError, TimeoutError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"Temporal did not answer within {within} s:\n{self.tail()}"
                    ) from None
                await asyncio.sleep(0.2)


class WorkerProcess(Child):
    """The real worker: `python worker.py` configured only through ORDERS_* variables."""

    def __init__(self, tmp_path: Path, settings: Mapping[str, str]):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")}
        env.update(settings)
        env.setdefault("ORDERS_LOG_JSON", "true")
        env.setdefault("ORDERS_SECRET_KEY", "Rv5hcJCkTIuOcQiBRBFtOMg9ND2HHSAPVwPyCT2_soQ=")  # TEST_SECRET_KEY
        super().__init__("worker", [sys.executable, "worker.py"], tmp_path / "worker.log", env)

    async def wait_polling(self, client: Client, task_queue: str, within: float = READY_TIMEOUT) -> None:
        """Until this process (by pid) polls the workflow task queue."""
        request = DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
        deadline = time.monotonic() + within
        while True:
            if not self.alive():
                raise AssertionError(f"the worker exited:\n{self.tail()}")
            with suppress(RPCError):
                pollers = (await client.workflow_service.describe_task_queue(request)).pollers
                if any(p.identity.startswith(f"{self.pid}@") for p in pollers):
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker did not poll {task_queue} within {within} s")
            await asyncio.sleep(0.2)
