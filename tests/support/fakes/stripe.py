"""A fake Stripe API (POST /v1/refunds) that checks the Bearer key, the form shape and honours
Idempotency-Key as Stripe does: the same key returns the first answer, never a second refund."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.fakes.server import Faults, Journal, ShapeError, expect, json_error


def _error(status: int, kind: str, message: str) -> JSONResponse:
    return json_error(status, {"error": {"type": kind, "message": message}})


@dataclass
class FakeStripe:
    api_key: str = "sk_test_orderflow"
    faults: Faults = field(default_factory=Faults)
    journal: Journal = field(default_factory=Journal)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)  # refund id -> refund
    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)  # idempotency key -> refund

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/refunds", self.create_refund, methods=["POST"])])

    async def create_refund(self, request: Request) -> Response:
        failure = self.faults.before()
        try:
            response = await self._create(request) if failure is None else self._as_stripe(failure)
        except ShapeError as error:
            self.journal.problems.append(str(error))
            response = _error(400, "invalid_request_error", str(error))
        await self.journal.record(request, response.status_code)
        return response

    @staticmethod
    def _as_stripe(failure: Response) -> Response:
        """A failure served on purpose, in Stripe's error shape so the package reads it as Stripe would."""
        kind = "rate_limit_error" if failure.status_code == 429 else "api_error"
        response = _error(failure.status_code, kind, "failing on purpose")
        if "retry-after" in failure.headers:
            response.headers["Retry-After"] = failure.headers["retry-after"]
        return response

    async def _create(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "invalid_request_error", "Invalid API Key provided: sk_test_****")
        form = dict(parse_qsl((await request.body()).decode()))  # Stripe posts form-encoded bodies
        key = request.headers.get("idempotency-key")
        if not key:
            return _error(400, "invalid_request_error", "this fake requires an Idempotency-Key")
        if key in self.by_key:
            return JSONResponse(self.by_key[key], headers={"Idempotent-Replayed": "true"})
        payment_intent, amount = form.get("payment_intent"), str(form.get("amount") or "")
        expect(isinstance(payment_intent, str) and payment_intent.startswith("pi_"), "payment_intent pi_...")
        if not amount.isdigit() or int(amount) <= 0:
            return _error(400, "invalid_request_error", "amount must be a positive integer in minor units")
        refund_id = f"re_fake{len(self.refunds) + 1:06d}"
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": int(amount),
            "currency": "eur",
            "payment_intent": payment_intent,
            "metadata": {k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")},
            "status": "succeeded",
        }
        self.refunds[refund_id] = refund
        self.by_key[key] = refund
        return self.faults.after_write() or JSONResponse(refund)
