"""The crime types a model can be trained for (``--crime-types``)."""

from __future__ import annotations

# What --crime-types can name: the UCR categories and keyword groups of the crime
# description (LAPD's "Crm Cd Desc", a generic schema's crime type). One declaration: the
# flag's help, the config check and the filter all read it.
CRIME_TYPES: dict[str, tuple[str, str]] = {
    "violent": ("category", "violent"),
    "property": ("category", "property"),
    "burglary": ("text", "BURGLARY"),
    "vehicle": ("text", "VEHICLE|AUTO|MOTOR"),
    "robbery": ("text", "ROBBERY"),
    "assault": ("text", "ASSAULT|BATTERY"),
    "theft": ("text", "THEFT|LARCENY|STOLEN|SHOPLIFT|PICKPOCKET|PURSE"),
}
