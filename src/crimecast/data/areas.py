"""The 21 LAPD geographic areas (divisions): codes and canonical names."""

from __future__ import annotations

LAPD_AREAS: dict[int, str] = {
    1: "Central",
    2: "Rampart",
    3: "Southwest",
    4: "Hollenbeck",
    5: "Harbor",
    6: "Hollywood",
    7: "Wilshire",
    8: "West LA",
    9: "Van Nuys",
    10: "West Valley",
    11: "Northeast",
    12: "77th Street",
    13: "Newton",
    14: "Pacific",
    15: "N Hollywood",
    16: "Foothill",
    17: "Devonshire",
    18: "Southeast",
    19: "Mission",
    20: "Olympic",
    21: "Topanga",
}


def normalise_area_name(name: str) -> str:
    """Return a key that matches LAPD area names across sources.

    Sources disagree on case and spelling ("77Th Street", "WEST LA", "N Hollywood",
    "North Hollywood", "West La", "West Los Angeles"), so names are compared upper-cased with
    whitespace collapsed and "NORTH " shortened to "N ".
    """
    key = " ".join(name.upper().split())
    return key.replace("NORTH HOLLYWOOD", "N HOLLYWOOD").replace("WEST LOS ANGELES", "WEST LA")


AREA_ID_BY_KEY: dict[str, int] = {normalise_area_name(v): k for k, v in LAPD_AREAS.items()}


def area_id_for_name(name: str) -> int | None:
    """Return the LAPD area code for a division name from any source, or None."""
    return AREA_ID_BY_KEY.get(normalise_area_name(name))
