"""The inbox sweeper's activity: apply webhook deliveries still `received` (app/channel_events.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from app.channel_events import Inbound
from workflows.inbox import SWEEP_ACTIVITY, SweepOutcome, SweepRound


class InboxActivities:
    def __init__(self, inbound: Inbound) -> None:
        self._inbound = inbound

    @activity.defn(name=SWEEP_ACTIVITY)
    async def sweep_inbox(self, round_: SweepRound) -> SweepOutcome:
        activity.heartbeat()
        received_before = datetime.now(UTC) - round_.settle
        tried, left = await self._inbound.sweep(received_before, round_.limit, activity.heartbeat)
        return SweepOutcome(tried=tried, left=left)
