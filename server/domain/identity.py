"""Identity numbers: mainland resident IDs (GB 11643-1999) and organisations' unified social
credit codes (GB 32100-2015), each with its check character."""

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


# unified social credit codes of organisations (GB 32100-2015) ---------------------------

CREDIT_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def is_valid_credit_code(value: str) -> bool:
    """A unified social credit code (GB 32100-2015): 18 characters, the last a check."""
    value = value.strip().upper()
    if not CREDIT_CODE.match(value):
        return False
    total = sum(
        CREDIT_CODE_CHARS.index(c) * w for c, w in zip(value[:17], CREDIT_CODE_WEIGHTS, strict=True)
    )
    return CREDIT_CODE_CHARS[(31 - total % 31) % 31] == value[17]
