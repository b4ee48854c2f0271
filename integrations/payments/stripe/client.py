"""Refunds through Stripe with the `stripe` package, once each whatever the retries.

docs.stripe.com/api/refunds/create and docs.stripe.com/api/idempotent_requests: every refund is sent
with Idempotency-Key `refund:<orderflow refund id>`, so a retry (after a timeout, a 5xx, a crash) gets
the refund the first attempt made instead of a second one. The package's own retries are off: Temporal
retries the activity. `base_url` points the client at a local fake in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import stripe
from stripe._base_address import BaseAddresses
from stripe.params import RefundCreateParams

from domain.channel_events import to_minor_units
from integrations.errors import PermanentError, RetryableError


@dataclass(frozen=True)
class RefundResult:
    refund_id: str
    status: str  # Stripe's: pending, requires_action, succeeded, failed, canceled


class StripePayments:
    def __init__(self, api_key: str, *, base_url: str | None = None, timeout: float = 20.0) -> None:
        addresses: BaseAddresses = {"api": base_url} if base_url else {}
        self._http = stripe.HTTPXClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key, base_addresses=addresses, http_client=self._http, max_network_retries=0
        )

    async def close(self) -> None:
        """Close the connections this client opened (one client per call: close it after)."""
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def refund(
        self, refund_id: str, payment_intent_id: str, amount: Decimal, currency: str
    ) -> RefundResult:
        """Refund `amount` of the payment; repeated with the same refund_id, returns the same refund."""
        params: RefundCreateParams = {
            "payment_intent": payment_intent_id,
            "amount": to_minor_units(amount, currency),
            "metadata": {"orderflow_refund_id": refund_id},
        }
        try:
            refund = await self._client.v1.refunds.create_async(
                params, options={"idempotency_key": f"refund:{refund_id}"}
            )
        except stripe.APIConnectionError as error:
            raise RetryableError(f"could not reach Stripe: {error.user_message}") from error
        except stripe.StripeError as error:
            raise classify(error) from error
        return RefundResult(refund_id=refund.id, status=str(refund.status))


def classify(error: stripe.StripeError) -> PermanentError | RetryableError:
    """429, 408 and 5xx may work later; any other 4xx (a bad key, a refused refund) will not."""
    status = error.http_status
    message = str(error.user_message or type(error).__name__)
    if status is None or status in (408, 429) or status >= 500:
        return RetryableError(f"Stripe: {message}", status=status, retry_after=_retry_after(error))
    if status in (401, 403):
        return PermanentError(f"Stripe refused the API key: {message}", status=status)
    return PermanentError(f"Stripe refused the refund: {message}", status=status)


def _retry_after(error: stripe.StripeError) -> float | None:
    value = (error.headers or {}).get("Retry-After") or (error.headers or {}).get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None
