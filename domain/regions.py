"""Shipping regions: the coarse zones warehouses price and promise delivery by, and each country's zone."""

from __future__ import annotations

from enum import StrEnum


class Region(StrEnum):
    NA = "na"  # US (with the territories USPS serves as domestic), Canada, Mexico (USMCA lanes)
    LATAM = "latam"  # Central and South America, the Caribbean
    EU = "eu"  # geographic Europe: EU, EEA, UK, Switzerland, the Balkans, Ukraine, Russia, Turkey
    ASIA = "asia"  # East, South-East, South and Central Asia, China included
    OCEANIA = "oceania"  # Australia, New Zealand, the Pacific islands (own overseas warehouses)
    MEA = "mea"  # Middle East and Africa


# One line per group so a reviewer can see where a country went; the tests check every ISO code
# appears exactly once.
_COUNTRIES_BY_REGION: dict[Region, str] = {
    Region.NA: "US CA MX PR VI GU AS MP UM PM",
    Region.LATAM: (
        "AR BO BR CL CO EC FK GF GS GY PE PY SR UY VE "  # South America
        "BZ CR GT HN NI PA SV "  # Central America
        "AG AI AW BB BL BM BQ BS CU CW DM DO GD GP HT JM KN KY LC MF MQ MS SX TC TT VC VG"  # Caribbean
    ),
    Region.EU: (
        "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK "  # EU
        "IS LI NO CH GB GG IM JE GI AD MC SM VA AX FO GL SJ BV "  # EEA, UK, microstates, Nordic
        "AL BA ME MK RS MD UA BY RU TR AM AZ GE"  # rest of the continent and the Caucasus
    ),
    Region.ASIA: (
        "CN HK MO TW JP KR KP MN "  # East Asia
        "BN ID KH LA MM MY PH SG TH TL VN "  # South-East Asia
        "AF BD BT IN LK MV NP PK IO "  # South Asia
        "KZ KG TJ TM UZ"  # Central Asia
    ),
    Region.OCEANIA: ("AU NZ CX CC NF HM AQ FJ PG SB VU NC PF WF WS TO TV KI NR FM MH PW CK NU TK PN"),
    Region.MEA: (
        "AE BH IL IQ IR JO KW LB OM PS QA SA SY YE "  # Middle East
        "DZ EG EH LY MA TN SD SS "  # North Africa
        "ER ET DJ SO KE UG TZ RW BI "  # East Africa
        "CD CG CF CM GA GQ ST TD "  # Central Africa
        "NE NG BJ TG GH CI LR SL GN GW GM SN ML MR BF CV "  # West Africa
        "AO ZM ZW MW MZ BW NA ZA LS SZ "  # Southern Africa
        "MG MU SC KM RE YT SH TF"  # islands
    ),
}

_REGION_OF: dict[str, Region] = {
    country: region for region, codes in _COUNTRIES_BY_REGION.items() for country in codes.split()
}


def region_of(country: str) -> Region:
    """The shipping region of an ISO 3166-1 alpha-2 country code."""
    try:
        return _REGION_OF[country.strip().upper()]
    except KeyError:
        raise ValueError(f"'{country}' is not an ISO 3166-1 alpha-2 country code") from None
