"""Translations: zh_CN first, English second.

Catalogues live in ``web/translations``.  The install scripts compile them to
``.mo`` files; where a ``.mo`` is missing or older than its ``.po`` the catalogue
is compiled in memory at start, so a plain ``pip install`` still speaks Chinese.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

from web import TRANSLATIONS_DIR

log = logging.getLogger(__name__)

DEFAULT_LOCALE = "zh_CN"
LOCALES = ("zh_CN", "en")
LOCALE_NAMES = {"zh_CN": "中文", "en": "English"}
DOMAIN = "messages"

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)


def normalise_locale(value: str | None) -> str | None:
    if not value:
        return None
    value = value.replace("-", "_").strip()
    lowered = value.lower()
    if lowered.startswith("zh"):
        return "zh_CN"
    if lowered.startswith("en"):
        return "en"
    return None


@cache
def translations(locale: str) -> NullTranslations:
    folder = TRANSLATIONS_DIR / locale / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as handle:
            return Translations(handle, domain=DOMAIN)
    if po.exists():
        log.info("compiling %s in memory (run `pybabel compile` to skip this)", po.name)
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=locale, domain=DOMAIN)
        buffer = BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        return Translations(buffer, domain=DOMAIN)
    return NullTranslations()


def gettext(message: str, **params: Any) -> str:
    text = translations(current_locale.get()).gettext(message)
    return text % params if params else text


def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    text = translations(current_locale.get()).ngettext(singular, plural, n)
    params.setdefault("num", n)
    return text % params


def translate_in(locale: str, message: str, **params: Any) -> str:
    token = current_locale.set(locale)
    try:
        return gettext(message, **params)
    finally:
        current_locale.reset(token)
