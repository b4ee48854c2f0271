"""Identifier rules, written once: SKU and warehouse-code patterns, Unicode normalisation, stock bounds.

Every edge that accepts an identifier (order bodies, URL paths, query parameters, CSV rows, operator
actions) uses the types here, so the same text is the same identifier everywhere:

- Normalised first (NFKC, invisible characters removed, surrounding whitespace stripped): a
  channel_order_id typed in NFC or NFD, pasted with a zero-width space or a BOM, or in fullwidth
  characters (U+FF21 for "A") is one identifier, so it dedupes to one order.
- SKUs are case-sensitive, as Shopify and Amazon keep them, and are stored exactly as written so they
  can be echoed back to the channel. But two SKUs that differ only in case are never two items:
  one order cannot list both (PlaceOrder) and the stock catalog refuses a second spelling
  (services.inventory). `sku_key` is the folded form used for those comparisons.
- A SKU never starts with a character a spreadsheet reads as a formula (= + - @, tab, CR): the
  pattern starts with a letter or digit, so an exported CSV cannot carry a formula in that column.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import BeforeValidator, StringConstraints

SKU_MAX_LENGTH = 64
WAREHOUSE_CODE_MAX_LENGTH = 32
# Letters and digits (ASCII), then also . _ / - ; "/" because sellers write variants as TEE/RED/M.
SKU_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._/-]{{0,{SKU_MAX_LENGTH - 1}}}$"
WAREHOUSE_CODE_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{WAREHOUSE_CODE_MAX_LENGTH - 1}}}$"

# Counts a stock row holds: what PUT /inventory and a CSV import accept (the columns are INTEGER).
MAX_STOCK_COUNT = 10_000_000

# Characters that change the bytes but not what a person sees: zero-width space, non-joiner and
# joiner, word joiner, BOM / zero-width no-break space, soft hyphen, and the bidi marks, embeddings,
# overrides and isolates (LRM, RLM, ALM, LRE..RLO, LRI..PDI).
INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def normalise_identifier(value: Any) -> Any:
    """NFKC (fullwidth and compatibility forms to their plain letters; NFD to composed), without
    invisible characters, stripped. Anything but a string is left for the type check to refuse."""
    if not isinstance(value, str):
        return value
    return INVISIBLE.sub("", unicodedata.normalize("NFKC", value)).strip()


def sku_key(sku: str) -> str:
    """The form two spellings of one SKU share ("abc-1" and "ABC-1"): compare with this, store the SKU."""
    return sku.casefold()


def whole_number(value: Any) -> Any:
    """An int as JSON sends it, or text of ASCII digits (with an optional sign, so "-1" is refused
    for its sign by the bounds) as a CSV cell holds it. Refused: bools, fractions ("5.0", 5.0),
    digit separators ("1_000"), exponents and non-ASCII digits (Arabic-Indic and other non-ASCII digits)."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true or false")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value.strip()):
        return int(value.strip())
    raise ValueError("must be a whole number written with the digits 0-9 only")


Identifier = Annotated[str, BeforeValidator(normalise_identifier)]
Sku = Annotated[str, BeforeValidator(normalise_identifier), StringConstraints(pattern=SKU_PATTERN)]
WarehouseCode = Annotated[
    str, BeforeValidator(normalise_identifier), StringConstraints(pattern=WAREHOUSE_CODE_PATTERN)
]
