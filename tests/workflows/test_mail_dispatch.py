"""The mail dispatcher on the time-skipping server, a real SMTP server and the real databases: mail
queued while SMTP was unset goes out once when SMTP comes up, old mail is given up, refused mail stays
queued and goes out later; a claimed row is sent by one sender only."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import Engine, update
from sqlmodel import Session, col
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from domain.mail import MailDispatcherView, mail_dispatcher_id
from services.db import transaction
from services.mail_queue import MailQueue
from services.notifications import NotificationOutbox
from services.tables import Notification, utcnow
from tests.support.factories import eventually
from tests.support.smtp import SmtpServer
from tests.support.temporal import make_settings, running_worker
from worker import build_worker, start_mail_dispatcher
from workflows.mail import MailDispatcherWorkflow

KIND = "order_shipped:WH-A"


def queue_mail(engine: Engine, order_id: str, *, written_ago: timedelta) -> None:
    """An outbox row nobody sent, written `written_ago` (the dispatcher reads the database's clock)."""
    NotificationOutbox(engine).record(
        order_id=order_id,
        kind=KIND,
        recipient="ada@example.com",
        language="en",
        subject=f"Your order {order_id} has shipped",
        body_text="It is on its way.\n",
        body_html="<p>It is on its way.</p>\n",
    )
    with transaction(engine) as session:
        session.execute(
            update(Notification)
            .where(col(Notification.order_id) == order_id)
            .values(created_at=utcnow() - written_ago)
        )


def row(engine: Engine, order_id: str) -> Notification:
    with Session(engine) as session:
        found = session.get(Notification, (order_id, KIND))
        assert found is not None
        return found


def dispatcher(client: Client, settings: Settings) -> WorkflowHandle[MailDispatcherWorkflow, None]:
    return client.get_workflow_handle_for(MailDispatcherWorkflow.run, mail_dispatcher_id(settings.task_queue))


async def rounds_done(client: Client, settings: Settings, at_least: int) -> MailDispatcherView:
    """The dispatcher's view once it has finished `at_least` rounds."""
    for _ in range(200):
        view = await dispatcher(client, settings).query(MailDispatcherWorkflow.view)
        if view.rounds >= at_least:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"the mail dispatcher did not finish {at_least} rounds: {view}")


def smtp(server: SmtpServer) -> dict[str, object]:
    return {"smtp_host": "127.0.0.1", "smtp_port": server.port}


def html_part(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


async def test_mail_queued_while_smtp_was_unset_is_sent_once_when_smtp_comes_up(
    time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine, smtp_server: SmtpServer
) -> None:
    client = time_skipping_env.client
    queue_mail(sqlite_engine, "ord_1", written_ago=timedelta(minutes=10))
    settings = make_settings()
    async with build_worker(client, settings, sqlite_engine, max_cached_workflows=0):
        await start_mail_dispatcher(client, settings)
        view = await rounds_done(client, settings, 1)
        assert view.last is not None
        assert not view.last.smtp_configured
    assert smtp_server.inbox.received == []
    assert row(sqlite_engine, "ord_1").sent_at is None

    # The worker restarts with SMTP configured; its start-up wakes the (still running) dispatcher.
    with_smtp = settings.model_copy(update=smtp(smtp_server))
    async with running_worker(client, with_smtp, sqlite_engine):
        await start_mail_dispatcher(client, with_smtp)
        await eventually(lambda: smtp_server.inbox.received)
        await time_skipping_env.sleep(timedelta(minutes=30))  # six more rounds
        view = await rounds_done(client, settings, 3)
    [(recipients, message)] = smtp_server.inbox.received
    assert recipients == ["ada@example.com"]
    assert message["Message-ID"] == "<ord_1.order_shipped%3AWH-A@orderflow>"
    assert "It is on its way." in html_part(message)
    assert row(sqlite_engine, "ord_1").sent_at is not None
    assert view.sent == 1


async def test_mail_older_than_the_give_up_age_is_not_sent_and_is_marked_given_up(
    time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine, smtp_server: SmtpServer
) -> None:
    client = time_skipping_env.client
    queue_mail(sqlite_engine, "ord_old", written_ago=timedelta(days=3, hours=1))
    queue_mail(sqlite_engine, "ord_new", written_ago=timedelta(days=2))
    settings = make_settings(**smtp(smtp_server), mail_give_up_after="3d")
    async with running_worker(client, settings, sqlite_engine):
        await start_mail_dispatcher(client, settings)
        await eventually(lambda: smtp_server.inbox.received)
        view = await rounds_done(client, settings, 1)
    [(_, message)] = smtp_server.inbox.received
    assert message["Message-ID"] == "<ord_new.order_shipped%3AWH-A@orderflow>"
    old = row(sqlite_engine, "ord_old")
    assert old.sent_at is None
    assert old.given_up_at is not None
    assert [r.order_id for r in MailQueue(sqlite_engine).pending(given_up=True)] == ["ord_old"]
    assert view.given_up == 1


async def test_refused_mail_stays_queued_and_goes_out_after_the_retry_timer(
    time_skipping_env: WorkflowEnvironment, sqlite_engine: Engine, smtp_server: SmtpServer
) -> None:
    client = time_skipping_env.client
    queue_mail(sqlite_engine, "ord_2", written_ago=timedelta(minutes=10))
    smtp_server.inbox.refuse.add("ada@example.com")
    settings = make_settings(**smtp(smtp_server))
    async with running_worker(client, settings, sqlite_engine):
        await start_mail_dispatcher(client, settings)
        view = await rounds_done(client, settings, 1)
        assert view.last is not None
        assert view.last.failed == 1
        queued = row(sqlite_engine, "ord_2")
        assert (queued.sent_at, queued.attempts, queued.claimed_by) == (None, 1, None)
        assert queued.last_error is not None
        assert "550" in queued.last_error
        assert smtp_server.inbox.received == []

        smtp_server.inbox.refuse.clear()
        await time_skipping_env.sleep(timedelta(minutes=2))  # the one-minute timer after a failure
        await eventually(lambda: smtp_server.inbox.received)
    assert len(smtp_server.inbox.received) == 1
    assert row(sqlite_engine, "ord_2").sent_at is not None


def test_a_claimed_row_is_sent_by_one_sender_only(engine: Engine) -> None:
    queue_mail(engine, "ord_3", written_ago=timedelta(minutes=10))
    queue = MailQueue(engine)
    assert queue.claim("ord_3", KIND, "dispatcher-a")
    assert not queue.claim("ord_3", KIND, "dispatcher-b")  # held: skipped
    assert queue.due(settled_for=timedelta(minutes=1), limit=10) == []
    assert queue.claim("ord_3", KIND, "dispatcher-a")  # its own retry goes on

    queue.release("ord_3", KIND, "dispatcher-a", "421 try later")
    assert [r.order_id for r in queue.due(settled_for=timedelta(minutes=1), limit=10)] == ["ord_3"]
    assert queue.claim("ord_3", KIND, "dispatcher-b")

    queue.mark_sent("ord_3", KIND)
    assert not queue.claim("ord_3", KIND, "dispatcher-a")
    assert queue.pending() == []


def test_a_claim_whose_holder_died_lapses(engine: Engine) -> None:
    queue_mail(engine, "ord_4", written_ago=timedelta(minutes=10))
    queue = MailQueue(engine)
    assert queue.claim("ord_4", KIND, "crashed", lease=timedelta(seconds=-1))
    assert queue.claim("ord_4", KIND, "dispatcher")
