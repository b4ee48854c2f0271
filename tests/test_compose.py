"""docker-compose.yml as Compose itself resolves it: the services, how they start, and the image they run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from core.config import Settings
from workflows import search_attributes

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
REQUIRE_COMPOSE = os.environ.get("ORDERFLOW_REQUIRE_COMPOSE") == "1"
INSTALL_HINT = "apt-get install -y --no-install-recommends docker-compose"
BOOTSTRAP_KEY = "compose-test-bootstrap-key"
SECRET_KEY = "Rv5hcJCkTIuOcQiBRBFtOMg9ND2HHSAPVwPyCT2_soQ="  # a Fernet key made for the tests

SERVICES = {"postgres", "temporal-schema", "temporal", "temporal-setup", "temporal-ui", "api", "worker"}
LONG_RUNNING = {"postgres", "temporal", "temporal-ui", "api", "worker"}
ONE_SHOT = SERVICES - LONG_RUNNING
APP = ("api", "worker")
HEALTHY = "service_healthy"
DONE = "service_completed_successfully"

# Parses YAML with the interpreter docker-compose v1 runs on: it ships PyYAML, which this venv need not.
_YAML_TO_JSON = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"

Config = dict[str, Any]


# -------------------------------------------------------------- running docker-compose
def _executable() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        if REQUIRE_COMPOSE:
            pytest.fail(f"ORDERFLOW_REQUIRE_COMPOSE=1 but docker-compose is not on PATH ({INSTALL_HINT})")
        pytest.skip(f"docker-compose is not installed ({INSTALL_HINT}); CI sets ORDERFLOW_REQUIRE_COMPOSE=1")
    return exe


def _python_shebang(exe: str) -> list[str] | None:
    """The interpreter command of a Python docker-compose (v1); None for the Go binary (v2)."""
    with open(exe, "rb") as file:
        first = file.readline(200)
    if first.startswith(b"#!") and b"python" in first:
        return first[2:].decode().split()  # "/usr/bin/python3" or "/usr/bin/env python3"
    return None


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty env file, so a developer's .env cannot change what the tests see."""
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


def _compose(
    env_file: Path, *args: str, bootstrap_key: str | None = BOOTSTRAP_KEY
) -> subprocess.CompletedProcess[str]:
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    env["ORDERS_SECRET_KEY"] = SECRET_KEY
    if bootstrap_key is not None:
        env["ORDERS_BOOTSTRAP_API_KEY"] = bootstrap_key
    command = [_executable(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def config(env_file: Path) -> Config:
    """`docker-compose config`: the file validated, interpolated and normalised, as data."""
    interpreter = _python_shebang(_executable())
    args = ("config",) if interpreter else ("config", "--format", "json")
    result = _compose(env_file, *args)
    assert result.returncode == 0, f"docker-compose config rejected the file:\n{result.stderr}"
    if interpreter is None:
        data: Config = json.loads(result.stdout)
        return data
    converted = subprocess.run(
        [*interpreter, "-c", _YAML_TO_JSON],
        input=result.stdout,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    parsed: Config = json.loads(converted.stdout)
    return parsed


# -------------------------------------------------------------- reading the normalised file
def _service(config: Config, name: str) -> Config:
    service: Config = config["services"][name]
    return service


def _environment(config: Config, name: str) -> dict[str, str]:
    return {key: str(value) for key, value in (_service(config, name).get("environment") or {}).items()}


def _conditions(config: Config, name: str) -> dict[str, str]:
    depends_on = _service(config, name).get("depends_on") or {}
    assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
    return {target: spec["condition"] for target, spec in depends_on.items()}


def _mounts(config: Config, name: str) -> dict[str, str]:
    """Container path -> source (absolute host path or volume name); v1 prints strings, v2 mappings."""
    mounts: dict[str, str] = {}
    for volume in _service(config, name).get("volumes") or []:
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        mounts[target] = source
    return mounts


def _host_path(config: Config, name: str, container_path: str) -> Path:
    """Where a file the container reads through a bind mount lives in this repository."""
    for target, source in _mounts(config, name).items():
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return Path(source) / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{name}: nothing is mounted over {container_path}")


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


# -------------------------------------------------------------- the services and their wiring
def test_the_stack_has_every_service(config: Config) -> None:
    assert set(config["services"]) == SERVICES


def test_api_and_worker_run_one_image_built_from_the_dockerfile(config: Config) -> None:
    api, worker = (_service(config, name) for name in APP)
    assert api["build"] == worker["build"]
    assert Path(api["build"]["context"]) == ROOT
    assert api["build"].get("dockerfile", "Dockerfile") == DOCKERFILE.name
    assert api["image"] == worker["image"]
    assert api.get("command") is None  # the image's CMD: uvicorn serving api.main:app
    assert worker["command"] == ["python", "-m", "worker"]


def test_startup_waits_for_each_dependency_to_be_ready(config: Config) -> None:
    assert {name: _conditions(config, name) for name in sorted(SERVICES - {"postgres"})} == {
        "api": {"postgres": HEALTHY, "temporal-setup": DONE},
        "temporal": {"temporal-schema": DONE},
        "temporal-schema": {"postgres": HEALTHY},
        "temporal-setup": {"temporal": HEALTHY},
        "temporal-ui": {"temporal": HEALTHY},
        "worker": {"postgres": HEALTHY, "temporal-setup": DONE},
    }
    assert "depends_on" not in _service(config, "postgres")


def test_services_report_their_health_where_it_is_waited_on_or_watched(config: Config) -> None:
    waited_on = {
        target
        for name in SERVICES
        for target, condition in _conditions(config, name).items()
        if condition == HEALTHY
    }
    for name in waited_on | {"postgres", "temporal", "api"}:
        healthcheck = _service(config, name).get("healthcheck") or {}
        assert healthcheck.get("test"), f"{name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"
    assert "pg_isready" in " ".join(_service(config, "postgres")["healthcheck"]["test"])
    assert "/healthz" in " ".join(_service(config, "api")["healthcheck"]["test"])


def test_services_come_back_after_a_crash_and_one_shot_jobs_retry(config: Config) -> None:
    for name in LONG_RUNNING:
        assert _service(config, name).get("restart") in {"always", "unless-stopped"}, name
    for name in ONE_SHOT:
        assert str(_service(config, name).get("restart")).startswith("on-failure"), name


def test_workers_scale_as_replicas_of_one_service(config: Config) -> None:
    worker = _service(config, "worker")
    assert int(worker["deploy"]["replicas"]) >= 1
    # Anything unique per container would stop `--scale worker=N`.
    assert "container_name" not in worker
    assert not worker.get("ports")
    # worker.py drains activities for 20 s on SIGTERM: Docker must wait longer before it kills.
    assert worker["stop_grace_period"] in {"30s", "1m"}


def test_postgres_data_lives_in_a_named_volume(config: Config) -> None:
    source = _mounts(config, "postgres")["/var/lib/postgresql/data"]
    assert source in (config.get("volumes") or {})


def test_scripts_and_config_the_services_mount_exist(config: Config) -> None:
    for name in SERVICES:
        for target, source in _mounts(config, name).items():
            if source.startswith("/"):
                assert Path(source).exists(), f"{name}: {source} (mounted at {target}) is missing"
    for name in ONE_SHOT:
        script = _service(config, name)["entrypoint"][-1]
        assert _host_path(config, name, script).is_file(), f"{name} runs {script}, which is not in deploy/"
    initdb = _host_path(config, "postgres", "/docker-entrypoint-initdb.d")
    assert (initdb / "10-orderflow-databases.sh").is_file()
    dynamic_config = _environment(config, "temporal")["DYNAMIC_CONFIG_FILE_PATH"]
    assert _host_path(config, "temporal", "/etc/temporal/" + dynamic_config).is_file()


def test_setup_job_registers_exactly_our_search_attributes(config: Config) -> None:
    registered = _service(config, "temporal-setup")["command"]
    expected = search_attributes.cli_flags()[1::2]  # ["OrderStatus=Keyword", ...]
    assert len(expected) == len(search_attributes.ALL)
    assert sorted(registered) == sorted(expected)
    # ...in the namespace the app uses.
    namespace = _environment(config, "temporal-setup")["TEMPORAL_NAMESPACE"]
    for name in APP:
        assert _environment(config, name)["ORDERS_TEMPORAL_NAMESPACE"] == namespace


# -------------------------------------------------------------- settings through the environment
def test_app_settings_are_real_settings_pointing_at_the_stack(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_env, worker_env = (_environment(config, name) for name in APP)
    # One set of settings for both; only the API holds the operator key.
    assert worker_env == {key: value for key, value in api_env.items() if key != "ORDERS_BOOTSTRAP_API_KEY"}
    for name in APP:
        environment = _environment(config, name)
        unknown = {
            key for key in environment if key.removeprefix("ORDERS_").lower() not in Settings.model_fields
        }
        assert not unknown, f"{name}: {sorted(unknown)} are not settings of core/config.py"
        for key in [key for key in os.environ if key.startswith("ORDERS_")]:
            monkeypatch.delenv(key)
        for key, value in environment.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        assert settings.temporal_address == "temporal:7233"
        database = urlsplit(settings.database_url)
        assert (database.scheme, database.hostname, database.port, database.path) == (
            "postgresql",
            "postgres",
            5432,
            "/orderflow",
        )


def test_database_passwords_agree_across_services(config: Config) -> None:
    postgres = _environment(config, "postgres")
    database = urlsplit(_environment(config, "api")["ORDERS_DATABASE_URL"])
    assert (database.username, database.password) == ("orderflow", postgres["ORDERFLOW_DB_PASSWORD"])
    assert _environment(config, "temporal")["POSTGRES_PWD"] == postgres["TEMPORAL_DB_PASSWORD"]
    assert _environment(config, "temporal-schema")["SQL_PASSWORD"] == postgres["TEMPORAL_DB_PASSWORD"]
    assert _environment(config, "temporal")["POSTGRES_USER"] == "temporal"


def test_the_api_key_comes_from_the_environment_and_is_required(config: Config, env_file: Path) -> None:
    assert _environment(config, "api")["ORDERS_BOOTSTRAP_API_KEY"] == BOOTSTRAP_KEY
    assert "ORDERS_BOOTSTRAP_API_KEY" not in _environment(config, "worker")
    missing = _compose(env_file, "config", "--quiet", bootstrap_key=None)
    assert missing.returncode != 0
    assert "ORDERS_BOOTSTRAP_API_KEY" in missing.stderr


def test_both_the_api_and_the_worker_get_the_secret_key(config: Config) -> None:
    assert all(_environment(config, name)["ORDERS_SECRET_KEY"] == SECRET_KEY for name in APP)


# -------------------------------------------------------------- images
def _pinned(image: str) -> bool:
    name, _, tag = image.rpartition("/")[2].partition(":")
    return bool(name) and bool(tag) and tag != "latest"


def test_every_image_is_pinned(config: Config) -> None:
    unpinned = {name: svc["image"] for name, svc in config["services"].items() if not _pinned(svc["image"])}
    assert not unpinned
    arguments = dict(args.split("=", 1) for op, args in _dockerfile() if op == "ARG" and "=" in args)
    bases = [args.split()[0] for op, args in _dockerfile() if op == "FROM"]
    for base in bases:
        image = arguments.get(base.strip("${}"), base)
        assert _pinned(image), f"Dockerfile FROM {base} -> {image}"
        assert image.startswith("python:3.11-slim")


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [args.strip() for op, args in _runtime_stage() if op == "USER"]
    assert users, "the runtime stage never leaves root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_the_image_serves_the_api_on_port_8000_by_default() -> None:
    runtime = dict(_runtime_stage())
    assert runtime["EXPOSE"].split() == ["8000"]
    assert json.loads(runtime["CMD"]) == ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".data", "tests", "deploy", ".env"} <= ignored
