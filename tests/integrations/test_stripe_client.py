"""Stripe refunds through the stripe package against a fake Stripe on 127.0.0.1: one refund per
orderflow refund whatever the retries (Idempotency-Key), and a wrong key is a permanent error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from integrations.errors import PermanentError, RetryableError
from integrations.payments.stripe.client import StripePayments
from tests.integrations.retrying import with_retries
from tests.support.fakes.server import Faults, serving
from tests.support.fakes.stripe import FakeStripe

# stripe.HTTPXClient posts bytes with data=, which httpx 0.28 deprecates: the package's, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

INTENT = "pi_3MtwBwLkdIwHu7ix28a3tqPa"


@pytest.fixture
async def stripe_api() -> AsyncIterator[tuple[FakeStripe, str]]:
    fake = FakeStripe()
    async with serving(fake.app()) as url:
        yield fake, url


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(Faults(), id="no-failure"),
        pytest.param(Faults(fail_first=2, status=500), id="two-5xx"),
        pytest.param(Faults(fail_first=1, status=429, retry_after="3"), id="rate-limited"),
        pytest.param(Faults(lose_responses=1), id="response-lost-after-refund"),
    ],
)
async def test_retries_make_exactly_one_refund(stripe_api: tuple[FakeStripe, str], faults: Faults) -> None:
    fake, url = stripe_api
    fake.faults = faults
    payments = StripePayments(fake.api_key, base_url=url)
    result, _ = await with_retries(lambda: payments.refund("RF-42", INTENT, Decimal("10.00"), "EUR"))
    again = await payments.refund("RF-42", INTENT, Decimal("10.00"), "EUR")
    assert again == result
    (refund,) = fake.refunds.values()
    assert (refund["id"], refund["amount"], refund["metadata"]) == (
        result.refund_id,
        1000,
        {"orderflow_refund_id": "RF-42"},
    )
    assert result.status == "succeeded"
    assert {item.headers.get("idempotency-key") for item in fake.journal.received} == {"refund:RF-42"}


async def test_amounts_go_out_in_minor_units_by_currency(stripe_api: tuple[FakeStripe, str]) -> None:
    fake, url = stripe_api
    payments = StripePayments(fake.api_key, base_url=url)
    await payments.refund("RF-1", INTENT, Decimal(1500), "JPY")
    await payments.refund("RF-2", INTENT, Decimal("1.250"), "KWD")
    assert [refund["amount"] for refund in fake.refunds.values()] == [1500, 1250]


async def test_a_second_refund_record_is_a_second_refund(stripe_api: tuple[FakeStripe, str]) -> None:
    fake, url = stripe_api
    payments = StripePayments(fake.api_key, base_url=url)
    first = await payments.refund("RF-1", INTENT, Decimal("5.00"), "EUR")
    second = await payments.refund("RF-2", INTENT, Decimal("5.00"), "EUR")
    assert first.refund_id != second.refund_id
    assert len(fake.refunds) == 2


async def test_rate_limit_says_when_to_retry(stripe_api: tuple[FakeStripe, str]) -> None:
    fake, url = stripe_api
    fake.faults = Faults(fail_first=1, status=429, retry_after="3")
    with pytest.raises(RetryableError) as limited:
        await StripePayments(fake.api_key, base_url=url).refund("RF-9", INTENT, Decimal(1), "EUR")
    assert (limited.value.status, limited.value.retry_after) == (429, 3.0)
    assert fake.refunds == {}


async def test_wrong_key_is_a_permanent_error(stripe_api: tuple[FakeStripe, str]) -> None:
    fake, url = stripe_api
    with pytest.raises(PermanentError) as refused:
        await StripePayments("sk_test_revoked", base_url=url).refund("RF-42", INTENT, Decimal("10.00"), "EUR")
    assert refused.value.status == 401
    assert "sk_test_revoked" not in str(refused.value)
    assert fake.refunds == {}


async def test_a_refused_refund_is_permanent(stripe_api: tuple[FakeStripe, str]) -> None:
    fake, url = stripe_api
    with pytest.raises(PermanentError) as refused:
        await StripePayments(fake.api_key, base_url=url).refund(
            "RF-42", "ch_not_an_intent", Decimal(1), "EUR"
        )
    assert refused.value.status == 400


async def test_unreachable_stripe_is_retryable() -> None:
    with pytest.raises(RetryableError, match="could not reach Stripe"):
        await StripePayments("sk_test_x", base_url="http://127.0.0.1:9").refund(
            "RF-1", INTENT, Decimal(1), "EUR"
        )
