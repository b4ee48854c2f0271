"""The search attributes every order carries, so the Temporal Web UI can find stuck orders."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey

ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
CHANNEL = SearchAttributeKey.for_keyword("Channel")
DESTINATION_COUNTRY = SearchAttributeKey.for_keyword("DestinationCountry")
# Every warehouse a (split) order ships from: `Warehouses = "WH-A"` finds "WH-A+WH-B" orders too.
WAREHOUSES = SearchAttributeKey.for_keyword_list("Warehouses")
# The label "WH-A+WH-B" as one keyword, written by orders started before Warehouses (patch
# "warehouses-keyword-list"). Still registered: servers have it as Keyword, and a type cannot change
# under the same name, hence the new name; orders on the new code unset it.
WAREHOUSE = SearchAttributeKey.for_keyword("Warehouse")
CURRENCY = SearchAttributeKey.for_keyword("Currency")
EXCEPTION_REASON = SearchAttributeKey.for_keyword("ExceptionReason")
ORDER_TOTAL = SearchAttributeKey.for_float("OrderTotal")
PAYMENT_DEADLINE = SearchAttributeKey.for_datetime("PaymentDeadline")
SHIP_BY = SearchAttributeKey.for_datetime("ShipBy")
ON_HOLD = SearchAttributeKey.for_bool("OnHold")

ALL = (
    ORDER_STATUS,
    CHANNEL,
    DESTINATION_COUNTRY,
    WAREHOUSES,
    WAREHOUSE,
    CURRENCY,
    EXCEPTION_REASON,
    ORDER_TOTAL,
    PAYMENT_DEADLINE,
    SHIP_BY,
    ON_HOLD,
)


def cli_flags() -> list[str]:
    """`temporal server start-dev --search-attribute NAME=Type` flags registering every key."""
    flags: list[str] = []
    for key in ALL:
        cli_type = key.indexed_value_type.name.title().replace("_", "")  # KEYWORD_LIST -> KeywordList
        flags += ["--search-attribute", f"{key.name}={cli_type}"]
    return flags


async def register(client: Client) -> None:
    """Register every key on a server started without them (the time-skipping test server):
    an unregistered search attribute fails every workflow task (TEMPORAL.md)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={key.name: int(key.indexed_value_type) for key in ALL},  # type: ignore[misc]
        )
    )
