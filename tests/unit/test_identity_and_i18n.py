"""Resident ID checksums; translations complete and switchable; secrets kept out of audit."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from server.audit import scrub
from server.domain.identity import check_character, is_valid_credit_code, is_valid_resident_id
from server.i18n import translate_in
from web import TRANSLATIONS_DIR


@pytest.mark.parametrize("number", ["110101199003077571", "11010519491231002X"])
def test_valid_resident_ids_pass(number: str) -> None:
    assert is_valid_resident_id(number)


@pytest.mark.parametrize(
    "number",
    [
        "110101199003077572",  # wrong check character
        "11010119900307757",  # too short
        "110101199013077571",  # month 13
        "110101299003077571",  # born in the future
        "11010119900307757A",
    ],
)
def test_invalid_resident_ids_fail(number: str) -> None:
    assert not is_valid_resident_id(number)


def test_the_check_character_follows_gb11643() -> None:
    assert check_character("11010519491231002") == "X"


def test_every_message_has_a_chinese_translation() -> None:
    po = TRANSLATIONS_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
    pot = read_po((TRANSLATIONS_DIR / "messages.pot").open("rb"))
    catalog = read_po(po.open("rb"), locale="zh_CN")
    untranslated = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []
    missing = {m.id for m in pot if m.id} - {m.id for m in catalog if m.id}
    assert missing == set(), "run scripts/i18n.py extract"


def test_messages_switch_language_and_fill_parameters() -> None:
    message = "Too many failed attempts. Try again in %(minutes)s minutes."
    assert translate_in("zh_CN", message, minutes=15) == "失败次数过多，请 15 分钟后再试。"
    assert (
        translate_in("en", message, minutes=15)
        == "Too many failed attempts. Try again in 15 minutes."
    )


def test_scrub_removes_secrets_at_any_depth() -> None:
    cleaned = scrub({"account": "a", "password": "p", "nested": [{"code": "123456", "ok": 1}]})
    assert cleaned == {
        "account": "a",
        "password": "[removed]",
        "nested": [{"code": "[removed]", "ok": 1}],
    }


@pytest.mark.parametrize(
    ("code", "valid"),
    [("91110000600037341L", True), ("91110000600037341M", False), ("91110000MA00000000", False)],
)
def test_unified_social_credit_codes(code: str, valid: bool) -> None:
    assert is_valid_credit_code(code) is valid
