"""Keep the message catalogues in step with the code.

    .venv/bin/python scripts/i18n.py extract   # update messages.pot and merge it into every .po
    .venv/bin/python scripts/i18n.py check     # fail if a zh_CN message has no translation
    .venv/bin/python scripts/i18n.py compile   # write the .mo files (the install scripts do this)

English is the source language (msgids); zh_CN is the default interface language.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "web" / "translations"
POT = TRANSLATIONS / "messages.pot"
LOCALES = ("zh_CN", "en")


def _pybabel(*args: str) -> None:
    subprocess.run(  # noqa: S603 (our own interpreter and fixed arguments)
        [sys.executable, "-m", "babel.messages.frontend", *args], check=True, cwd=ROOT
    )


def extract() -> None:
    _pybabel(
        "-q",
        "extract",
        "-F",
        "babel.cfg",
        "-k",
        "N_",
        "--no-location",
        "--sort-output",
        "--omit-header",
        "-o",
        str(POT.relative_to(ROOT)),
        ".",
    )
    template = read_po(POT.open("rb"))
    for locale in LOCALES:
        po = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
        catalog = read_po(po.open("rb"), locale=locale) if po.exists() else Catalog(locale=locale)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.project, catalog.version = "Yizhan", "0.1"
        catalog.copyright_holder = "Yizhan authors"
        catalog.fuzzy = False  # a fuzzy header would make `pybabel compile` skip the catalogue
        po.parent.mkdir(parents=True, exist_ok=True)
        with po.open("wb") as handle:
            write_po(
                handle,
                catalog,
                omit_header=False,
                no_location=True,
                sort_output=True,
                ignore_obsolete=True,
                width=100,
            )
        print(f"updated {po.relative_to(ROOT)}")


def missing(locale: str = "zh_CN") -> list[str]:
    po = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"
    catalog = read_po(po.open("rb"), locale=locale)
    return [str(m.id) for m in catalog if m.id and (not m.string or m.fuzzy)]


def check() -> int:
    gaps = missing()
    for msgid in gaps:
        print(f"zh_CN lacks a translation: {msgid!r}")
    return 1 if gaps else 0


def compile_all() -> None:
    _pybabel("compile", "-d", str(TRANSLATIONS.relative_to(ROOT)), "-D", "messages", "--statistics")
    for locale in LOCALES:
        mo = TRANSLATIONS / locale / "LC_MESSAGES" / "messages.mo"
        po = mo.with_suffix(".po")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            raise SystemExit(f"{po.relative_to(ROOT)} did not compile (a fuzzy header?)")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "extract":
        extract()
    elif command == "compile":
        compile_all()
    else:
        raise SystemExit(check())
