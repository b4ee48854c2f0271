"""ISO code lists the API validates against, from maintained libraries rather than written out here:
ISO 3166-1 alpha-2 countries (pycountry) and ISO 4217 currencies with their minor units (iso4217).

Minor units come from ISO 4217 itself (the iso4217 package tracks ISO's list and its amendments), not
from CLDR (babel's get_currency_precision): CLDR gives the digits shops *display*, which differ for
HUF, IDR, COP, IQD and ten more (0 instead of ISO's 2 or 3), and amounts may carry ISO's digits.
"""

from __future__ import annotations

import pycountry
from iso4217 import Currency

# Every officially assigned ISO 3166-1 alpha-2 code. User-assigned codes (XK, used for Kosovo by some
# marketplaces) are refused: a destination needs a shipping region (domain.regions), and XK has none.
COUNTRIES: frozenset[str] = frozenset(country.alpha_2 for country in pycountry.countries)

# ISO 4217 codes nobody prices an order in: funds codes (Bolivian Mvdol, WIR, UF, unidad de valor
# real, US next day, indexed units) and accounting units. Metals, the SDR and the test and no-currency
# codes have no minor unit in ISO 4217 and are left out by that alone.
NOT_PRICED_IN = frozenset({"BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW", "XAD"})

# Withdrawn from ISO 4217 after orderflow accepted them (Netherlands Antillean guilder -> XCG, Bulgarian
# lev -> EUR in 2026, Zimbabwe dollar -> ZWG): still accepted, because an order in flight re-validates
# its input whenever its workflow replays, and refusing its currency then would strand it.
WITHDRAWN: dict[str, int] = {"ANG": 2, "BGN": 2, "ZWL": 2}

# Currency -> digits after the decimal point (JPY 0, USD 2, KWD 3).
CURRENCY_EXPONENTS: dict[str, int] = {
    **{
        currency.code: currency.exponent
        for currency in Currency
        if currency.exponent is not None and currency.code not in NOT_PRICED_IN
    },
    **WITHDRAWN,
}
