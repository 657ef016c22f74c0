"""File types are told by content, and must match the name; keys cannot escape."""

from __future__ import annotations

import pytest

from storage.keys import UnsafeKey, check_key, new_key
from storage.sniff import UnsupportedType, identify
from tests import samples


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("合同.pdf", samples.pdf(), "pdf"),
        ("photo.JPG", samples.jpeg(), "jpeg"),
        ("scan.png", samples.png(), "png"),
        ("statement.docx", samples.docx(), "docx"),
        ("call.mp3", samples.mp3(), "mp3"),
        ("call.m4a", samples.mp4(b"M4A "), "m4a"),
        ("voice.wav", samples.wav(), "wav"),
        ("video.mp4", samples.mp4(), "mp4"),
        ("video.webm", samples.webm(), "webm"),
        ("notes.txt", "借条：今借到人民币五万元。".encode(), "txt"),
    ],
)
def test_accepted_types_are_recognised(filename: str, data: bytes, expected: str) -> None:
    assert identify(filename, data[:4096], data).name == expected


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("invoice.pdf", samples.png()),  # a picture renamed to .pdf
        ("report.docx", b"PK\x03\x04" + b"\x00" * 60),  # a zip that is not Word
        ("script.pdf", b"#!/bin/sh\nrm -rf /\n"),  # text pretending to be a PDF
        ("program.exe", b"MZ\x90\x00\x03\x00\x00\x00"),
        ("blob.txt", b"\x00\x01\x02binary"),
        ("noextension", samples.pdf()),
    ],
)
def test_wrong_or_unknown_content_is_refused(filename: str, data: bytes) -> None:
    with pytest.raises(UnsupportedType):
        identify(filename, data[:4096], data)


@pytest.mark.parametrize(
    "key",
    ["../x", "a/../../b", "/abs/path", "a\x00b", "a\\b", "a//b", ".hidden", "a/./b", "a" * 600],
)
def test_unsafe_keys(key: str) -> None:
    with pytest.raises(UnsafeKey):
        check_key(key)


def test_new_keys_are_unguessable_and_safe() -> None:
    first, second = new_key("evidence", 7, "pdf"), new_key("evidence", 7, "pdf")
    assert first != second
    assert first.startswith("evidence/") and "/d7/" in first and first.endswith(".pdf")
    assert len(first.rsplit("/", 1)[1]) == 32 + 4  # 128 random bits, hex, and the extension
    assert check_key(first) == first
