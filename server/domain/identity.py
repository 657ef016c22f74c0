"""Mainland resident identity numbers (GB 11643-1999): 17 digits and a check character."""

from __future__ import annotations

import re
from datetime import date

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
PATTERN = re.compile(r"^\d{17}[\dX]$")


def check_character(first17: str) -> str:
    return CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def is_valid_resident_id(value: str) -> bool:
    value = value.strip().upper()
    if not PATTERN.match(value):
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > date.today():
        return False
    return check_character(value[:17]) == value[17]
