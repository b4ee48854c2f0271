"""Secrets at rest: Fernet with ORDERS_SECRET_KEY, rotation through ORDERS_SECRET_KEYS_PREVIOUS, the
start-up check that refuses a missing, malformed or wrong key, and log lines that never carry a secret."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import Engine, text

from api.main import create_app
from core.config import Settings
from core.logging import configure_logging
from domain.models import Channel
from services.secrets import SecretBox, SecretKeyProblem, check_secret_key
from services.shops import ShopFields, ShopService
from tests.support.temporal import TEST_SECRET_KEY, make_settings

ROOT = Path(__file__).resolve().parents[2]
OLD_KEY = SecretStr(TEST_SECRET_KEY)
SHOP = ShopFields(
    channel=Channel.SHOPIFY, name="Mugs", url="https://mugs.myshopify.com", currency="EUR", language="en"
)
TOKEN = "shpat_0123456789abcdef-not-in-the-database"


def box(key: str | SecretStr = OLD_KEY, *previous: str | SecretStr) -> SecretBox:
    def wrap(value: str | SecretStr) -> SecretStr:
        return value if isinstance(value, SecretStr) else SecretStr(value)

    return SecretBox(wrap(key), [wrap(p) for p in previous])


def dump(engine: Engine) -> str:
    """Every value of the tables that hold secrets, as one text."""
    with engine.connect() as conn:
        rows = [*conn.execute(text("SELECT * FROM shop_secrets")), *conn.execute(text("SELECT * FROM shops"))]
    return repr(rows)


# -------------------------------------------------------------- the key
def test_a_secret_is_stored_encrypted_and_reads_back() -> None:
    sealed = box().encrypt(TOKEN)
    assert TOKEN not in sealed
    assert box().decrypt(sealed) == TOKEN


@pytest.mark.parametrize("key", [None, "", "   "])
def test_a_missing_key_is_refused_naming_the_setting_and_how_to_make_one(key: str | None) -> None:
    with pytest.raises(SecretKeyProblem) as refused:
        SecretBox(SecretStr(key) if key is not None else None)
    assert "ORDERS_SECRET_KEY is not set" in str(refused.value)
    assert "Fernet.generate_key()" in str(refused.value)


@pytest.mark.parametrize("key", ["hunter2", "x" * 44, Fernet.generate_key().decode()[:-2]])
def test_a_malformed_key_is_refused(key: str) -> None:
    with pytest.raises(SecretKeyProblem, match=r"ORDERS_SECRET_KEY is not a Fernet key"):
        box(key)


def test_a_malformed_previous_key_names_its_own_setting() -> None:
    with pytest.raises(SecretKeyProblem, match=r"ORDERS_SECRET_KEYS_PREVIOUS is not a Fernet key"):
        box(OLD_KEY, "not-a-key")


def test_previous_keys_are_read_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("ORDERS_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("ORDERS_SECRET_KEYS_PREVIOUS", f"{first}, {second}")
    settings = Settings()
    assert [key.get_secret_value() for key in settings.secret_keys_previous] == [first, second]
    assert first not in repr(settings)


# -------------------------------------------------------------- the start-up check
def test_the_first_start_writes_a_canary_and_the_same_key_passes_again(engine: Engine) -> None:
    assert check_secret_key(engine, box()) == 0
    assert check_secret_key(engine, box()) == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM secret_canary")).scalar_one() == 1


def test_another_key_than_the_databases_is_a_start_up_error(engine: Engine) -> None:
    check_secret_key(engine, box())
    with pytest.raises(SecretKeyProblem, match=r"cannot decrypt the secrets this database holds"):
        check_secret_key(engine, box(Fernet.generate_key().decode()))


def test_rotating_the_key_reencrypts_every_secret_so_the_old_key_can_go(engine: Engine) -> None:
    old = box()
    check_secret_key(engine, old)
    shops = ShopService(engine, old)
    shops.put("mugs", SHOP, {"access_token": TOKEN, "client_secret": "first-hook-secret"})
    shops.put("mugs", SHOP, {"client_secret": "second-hook-secret"})  # keeps the first as previous

    new_key = Fernet.generate_key().decode()
    with pytest.raises(SecretKeyProblem):
        check_secret_key(engine, box(new_key))  # the new key alone cannot read the old secrets
    rotated = check_secret_key(engine, box(new_key, OLD_KEY))
    assert rotated == 4  # the canary, two secrets and one previous webhook secret

    fresh = box(new_key)
    assert check_secret_key(engine, fresh) == 0
    assert ShopService(engine, fresh).secret("mugs", "access_token") == TOKEN
    assert ShopService(engine, fresh).webhook_secrets("mugs", now=shops.get("mugs").updated_at) == [  # type: ignore[union-attr]
        "second-hook-secret",
        "first-hook-secret",
    ]
    assert TOKEN not in dump(engine)
    assert "hook-secret" not in dump(engine)


async def test_the_api_does_not_start_without_a_key(tmp_path: Path) -> None:
    app = create_app(make_settings(secret_key=None, database_url=f"sqlite:///{tmp_path}/api.db"))
    with pytest.raises(SecretKeyProblem, match=r"ORDERS_SECRET_KEY is not set"):
        async with app.router.lifespan_context(app):
            pass


def test_the_worker_does_not_start_without_a_key_and_says_what_to_do(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")}
    env |= {"ORDERS_DATABASE_URL": f"sqlite:///{tmp_path}/worker.db", "ORDERS_LOG_JSON": "true"}
    env["ORDERS_TEMPORAL_ADDRESS"] = "127.0.0.1:9"  # never reached: the key is checked first
    done = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["event"] == "worker_cannot_start"
    assert "ORDERS_SECRET_KEY is not set" in line["problem"]
    assert "Fernet.generate_key()" in line["problem"]


# -------------------------------------------------------------- logs
@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("as_json", [True, False])
def test_a_log_line_never_carries_a_secret(capsys: pytest.CaptureFixture[str], as_json: bool) -> None:
    configure_logging("INFO", json=as_json)
    log = structlog.get_logger("test.secrets")
    log.info(
        "shop_connected",
        shop_id="mugs",
        access_token=TOKEN,
        credentials={"client_secret": "s3cr3t-hook", "consumer_key": "ck_live_1"},
        headers={"X-Shopify-Access-Token": "shpat_header", "Authorization": "Bearer of_live_key"},
        smtp_password="pw-123",
    )
    logging.getLogger("test.stdlib").warning("outbound_call", extra={"stripe_secret_key": "sk_live_42"})
    err = capsys.readouterr().err
    for secret in (TOKEN, "s3cr3t-hook", "ck_live_1", "shpat_header", "of_live_key", "pw-123", "sk_live_42"):
        assert secret not in err
    assert "mugs" in err  # the rest of the line is still there
    if as_json:
        first = json.loads(err.splitlines()[0])
        assert first["access_token"] == "***"
        assert first["credentials"] == "***"
        assert first["headers"]["X-Shopify-Access-Token"] == "***"


def test_make_dev_keeps_one_generated_key_in_its_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scripts.devstack import DevConfig

    monkeypatch.delenv("ORDERS_SECRET_KEY", raising=False)
    monkeypatch.setenv("ORDERS_DEV_DATA_DIR", str(tmp_path / "data"))
    first = DevConfig.from_env().secret_key
    assert DevConfig.from_env().secret_key == first  # the database's secrets stay readable
    assert (tmp_path / "data" / "secret-key").stat().st_mode & 0o077 == 0
    assert box(first).decrypt(box(first).encrypt("x")) == "x"
