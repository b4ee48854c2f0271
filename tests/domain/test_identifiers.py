"""Identifier rules: one channel_order_id however it was typed, the SKU case rule, what counts are."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from pydantic import ValidationError

from domain.identifiers import SKU_PATTERN, WAREHOUSE_CODE_PATTERN, normalise_identifier
from domain.models import PlaceOrder, lines_differing_only_in_case
from domain.operator import ActionParams
from domain.stock import SetStock, StockRow


def order(channel_order_id: str, skus: tuple[str, ...] = ("MUG-1",)) -> dict[str, Any]:
    return {
        "channel": "shopify",
        "channel_order_id": channel_order_id,
        "customer": {"name": "Ana", "email": "ana@example.com"},
        "shipping_address": {"country": "DE", "city": "Berlin", "line1": "Invalidenstr. 1"},
        "lines": [{"sku": sku, "quantity": 1, "unit_price": "9.90"} for sku in skus],
        "currency": "EUR",
    }


CAFE = "Café-#1001"
VARIANTS = [
    unicodedata.normalize("NFC", CAFE),
    unicodedata.normalize("NFD", CAFE),  # e + combining acute accent
    "Caf\u200bé-#1001",  # zero-width space
    "\ufeffCafé-#1001",  # BOM pasted from a spreadsheet
    "Caf\u00ade\u0301-#1001",  # soft hyphen, decomposed é
    "\u200eCafé-#1001\u200f",  # bidi marks
    "Café\u2060-#1001 ",  # word joiner, trailing space
    "\uff23\uff41\uff46é\uff0d\uff03\uff11\uff10\uff10\uff11",  # fullwidth letters, digits and signs
]


@pytest.mark.parametrize("typed", VARIANTS)
def test_one_channel_order_id_however_it_was_typed(typed: str) -> None:
    assert typed != CAFE or typed is VARIANTS[0]
    assert PlaceOrder.model_validate(order(typed)).channel_order_id == unicodedata.normalize("NFC", CAFE)


def test_an_identifier_of_only_invisible_characters_is_refused() -> None:
    with pytest.raises(ValidationError, match="channel_order_id"):
        PlaceOrder.model_validate(order("\u200b\u200d\ufeff"))


def test_normalising_leaves_non_text_to_the_type_check() -> None:
    assert normalise_identifier(12) == 12


def test_a_tab_or_carriage_return_around_a_sku_is_stripped_not_stored() -> None:
    assert StockRow.model_validate({"warehouse": "WH-1", "sku": "\tX\r", "on_hand": 1}).sku == "X"


def test_two_skus_that_differ_only_in_case_are_one_item_in_an_order() -> None:
    conflict = lines_differing_only_in_case(PlaceOrder.model_validate(order("A-1", ("MUG-1", "mug-1"))).lines)
    assert conflict is not None
    assert conflict[0] == "lines[1].sku"
    assert conflict[1].startswith("'mug-1' and 'MUG-1' differ only in case")
    with pytest.raises(ValidationError, match=r"lines\[1\]\.sku: 'MUG-1' appears twice"):
        PlaceOrder.model_validate(order("A-1", ("MUG-1", "MUG-1")))
    kept = PlaceOrder.model_validate(order("A-1", ("Mug-1", "TEE/RED/M")))
    assert lines_differing_only_in_case(kept.lines) is None
    assert [line.sku for line in kept.lines] == ["Mug-1", "TEE/RED/M"]  # stored as the channel wrote it


@pytest.mark.parametrize("sku", ["=cmd|' /C calc'!A0", "+1", "-1", "@SUM(A1)", "S" * 65, "ÄPFEL"])
def test_a_sku_a_spreadsheet_would_run_or_the_stock_cannot_hold_is_refused(sku: str) -> None:
    with pytest.raises(ValidationError):
        StockRow.model_validate({"warehouse": "WH-1", "sku": sku, "on_hand": 1})
    with pytest.raises(ValidationError):
        PlaceOrder.model_validate(order("A-1", (sku,)))


@pytest.mark.parametrize("count", ["١٢", "1_000", "5.0", 5.0, "1e3", True, 2**31, 10**20, -1, "0x10"])
def test_a_count_is_a_whole_number_in_ascii_digits_within_the_stock_columns(count: object) -> None:
    with pytest.raises(ValidationError):
        SetStock.model_validate({"on_hand": count})


def test_csv_cells_and_json_numbers_give_the_same_counts() -> None:
    assert SetStock.model_validate({"on_hand": " 12 ", "safety_stock": "3"}) == SetStock(
        on_hand=12, safety_stock=3
    )
    assert SetStock.model_validate({"on_hand": 10_000_000}).on_hand == 10_000_000


def test_the_patterns_fit_the_stock_columns() -> None:
    assert SKU_PATTERN == r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$"
    assert WAREHOUSE_CODE_PATTERN == r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"


def test_a_warehouse_code_is_normalised_wherever_an_operator_names_it() -> None:

    assert ActionParams(warehouse="\uff37\uff28-A\u200b").warehouse == "WH-A"  # fullwidth, zero-width
    assert ActionParams(tracking_number=" JD0146000077 ").tracking_number == "JD0146000077"
