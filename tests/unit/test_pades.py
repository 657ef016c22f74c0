"""PAdES signatures with the platform key: a signed PDF checks out with pyHanko, a changed
byte anywhere in the signed range or an update appended afterwards is caught, a PDF
signed by another key is not trusted, and the key is made once and kept private."""

from __future__ import annotations

import io
import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature

from server.config import Settings, load_settings
from server.pdf import render_pdf
from server.signing import keys, pades
from server.signing.keys import PlatformKey, SigningKeyError, platform_key
from server.signing.pades import sign_pdf, signer_for, validation_context, verify_pdf

SECRET = "unit-test-secret-key-0123456789-abcdefghijkl"


def settings_in(folder: Path, **extra: str) -> Settings:
    env = {"YIZHAN_DATA_DIR": str(folder), "YIZHAN_SECRET_KEY": SECRET}
    env.update({f"YIZHAN_{name.upper()}": value for name, value in extra.items()})
    return load_settings(env)


@pytest.fixture(scope="module")
def draft() -> bytes:
    return render_pdf(
        "<h1>人民调解协议书</h1><p>申请人张三，被申请人李四。双方自愿达成如下协议。</p>"
    )


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> PlatformKey:
    return platform_key(settings_in(tmp_path_factory.mktemp("platform")))


@pytest.fixture(scope="module")
def signed(draft: bytes, key: PlatformKey) -> bytes:
    return sign_pdf(
        draft,
        field="yizhan-platform",
        reason="一站平台签发 / issued by Yizhan",
        location="演示区人民法院",
        signer=signer_for(key),
        certify=True,
    )


def byte_ranges(data: bytes) -> list[tuple[int, int]]:
    """The signed ranges of the (only) signature: [start, end) pairs."""
    found = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", data)
    assert found is not None
    a, b, c, d = (int(x) for x in found.groups())
    return [(a, a + b), (c, c + d)]


def test_a_signed_pdf_validates_with_pyhanko(signed: bytes, key: PlatformKey) -> None:
    reader = PdfFileReader(io.BytesIO(signed))
    (embedded,) = reader.embedded_regular_signatures
    status = validate_pdf_signature(embedded, validation_context(key.roots))
    assert status.intact and status.valid and status.trusted
    assert status.bottom_line
    assert embedded.field_name == "yizhan-platform"
    verdict = verify_pdf(signed, key.roots)
    assert verdict.signed_ok and verdict.problem == ""
    (check,) = verdict.signatures
    assert check.intact and check.valid and check.trusted and check.covers_whole_file
    assert check.signed_at is not None
    assert "Yizhan" in check.signer


def test_the_signature_is_pades(signed: bytes) -> None:
    assert b"/ETSI.CAdES.detached" in signed


@pytest.mark.parametrize("where", [0.0, 0.002, 0.25, 0.5, 0.75, 0.999, "second"])
def test_one_changed_byte_anywhere_in_the_signed_range_fails(
    signed: bytes, key: PlatformKey, where: float | str
) -> None:
    (first_start, first_end), (second_start, second_end) = byte_ranges(signed)
    if where == "second":
        position = second_start + (second_end - second_start) // 3
    else:
        assert isinstance(where, float)
        position = first_start + int((first_end - first_start - 1) * where)
    changed = bytearray(signed)
    changed[position] ^= 0x01
    verdict = verify_pdf(bytes(changed), key.roots)
    assert not verdict.signed_ok
    assert verdict.problem in (pades.CHANGED, pades.NOT_PDF)
    assert verdict.sha256 != verify_pdf(signed, key.roots).sha256


def test_a_changed_content_byte_reads_as_changed(signed: bytes, key: PlatformKey) -> None:
    # inside the first stream: the file still parses, the digest no longer matches
    start = signed.index(b"stream", signed.index(b"/Length")) + len(b"stream\n") + 5
    changed = bytearray(signed)
    changed[start] ^= 0xFF
    verdict = verify_pdf(bytes(changed), key.roots)
    assert verdict.problem == pades.CHANGED
    assert verdict.signatures and not verdict.signatures[0].intact


def test_an_update_appended_after_the_signature_does_not_cover_the_file(
    signed: bytes, key: PlatformKey
) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    writer.root["/Extra"] = generic.TextStringObject("added later")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    verdict = verify_pdf(out.getvalue(), key.roots)
    assert not verdict.signed_ok
    assert verdict.problem == pades.APPENDED
    (check,) = verdict.signatures
    assert check.intact and check.trusted  # what was signed is untouched...
    assert not check.covers_whole_file  # ...but the file holds more than that


def test_a_pdf_signed_by_another_key_is_not_trusted(
    draft: bytes, key: PlatformKey, tmp_path: Path
) -> None:
    other = platform_key(settings_in(tmp_path / "elsewhere"))
    forged = sign_pdf(
        draft, field="yizhan-platform", reason="forged", location="x", signer=signer_for(other)
    )
    verdict = verify_pdf(forged, key.roots)
    assert verdict.problem == pades.UNTRUSTED
    (check,) = verdict.signatures
    assert check.intact and check.valid and not check.trusted
    assert verify_pdf(forged, other.roots).signed_ok


def test_an_unsigned_pdf_and_a_non_pdf(draft: bytes, key: PlatformKey) -> None:
    assert verify_pdf(draft, key.roots).problem == pades.UNSIGNED
    assert verify_pdf(b"hello, not a pdf", key.roots).problem == pades.NOT_PDF


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    saved = dict(keys._cache)
    keys._cache.clear()
    try:
        yield
    finally:
        keys._cache.clear()
        keys._cache.update(saved)


def test_the_key_is_made_once_private_and_reused(tmp_path: Path, fresh_cache: None) -> None:
    settings = settings_in(tmp_path / "data")
    first = platform_key(settings)
    folder = tmp_path / "data" / "signing"
    for name in (keys.SIGNING_KEY, keys.ROOT_KEY):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    keys._cache.clear()
    again = platform_key(settings)
    assert again.certificate == first.certificate
    assert again.roots == first.roots and again.roots[0].subject == again.roots[0].issuer
    usage = first.certificate.extensions.get_extension_for_class(keys.x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert keys.trust_roots(settings) == first.roots


def test_configured_files_that_cannot_be_read_are_a_clear_error(
    tmp_path: Path, fresh_cache: None
) -> None:
    made = keys.ensure_generated(tmp_path / "made")
    missing = settings_in(
        tmp_path / "a",
        signing_key_file=str(tmp_path / "nope.key"),
        signing_cert_file=str(made / keys.SIGNING_CERT),
    )
    with pytest.raises(SigningKeyError, match="YIZHAN_SIGNING_KEY_FILE: cannot read"):
        platform_key(missing)
    (tmp_path / "garbage.pem").write_text("not a certificate")
    garbage = settings_in(
        tmp_path / "b",
        signing_key_file=str(made / keys.SIGNING_KEY),
        signing_cert_file=str(tmp_path / "garbage.pem"),
    )
    with pytest.raises(SigningKeyError, match="YIZHAN_SIGNING_CERT_FILE"):
        platform_key(garbage)
    other = keys.ensure_generated(tmp_path / "other")
    mismatched = settings_in(
        tmp_path / "c",
        signing_key_file=str(other / keys.SIGNING_KEY),
        signing_cert_file=str(made / keys.SIGNING_CERT),
    )
    with pytest.raises(SigningKeyError, match="not the one of the key"):
        platform_key(mismatched)
    only_key = settings_in(tmp_path / "d", signing_key_file=str(made / keys.SIGNING_KEY))
    with pytest.raises(SigningKeyError, match="must be set together"):
        platform_key(only_key)
    configured = settings_in(
        tmp_path / "e",
        signing_key_file=str(made / keys.SIGNING_KEY),
        signing_cert_file=str(made / keys.SIGNING_CERT),
    )
    assert platform_key(configured).roots[0].subject.rfc4514_string().find("Root") >= 0
    assert not (tmp_path / "e" / "signing").exists()  # nothing made when configured


def test_checking_needs_an_existing_key(tmp_path: Path, fresh_cache: None) -> None:
    with pytest.raises(SigningKeyError, match="no platform signing certificate"):
        keys.trust_roots(settings_in(tmp_path / "empty"))


def test_verify_pdf_command(
    signed: bytes,
    key: PlatformKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from cryptography.hazmat.primitives import serialization

    from server.signing.verify_cli import main

    monkeypatch.setenv("YIZHAN_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("YIZHAN_SECRET_KEY", SECRET)
    root = tmp_path / "root.pem"
    root.write_bytes(key.roots[0].public_bytes(serialization.Encoding.PEM))
    good = tmp_path / "good.pdf"
    good.write_bytes(signed)
    assert main([str(good), "--trust", str(root), "--no-database"]) == 0
    out = capsys.readouterr().out
    assert "VALID" in out and "NOT VALID" not in out and "intact yes" in out
    changed = bytearray(signed)
    changed[signed.index(b"stream", signed.index(b"/Length")) + 12] ^= 0xFF
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(bytes(changed))
    assert main([str(bad), "--trust", str(root), "--no-database", "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["ok"] is False and verdict["problem"] == "changed"
    # this data directory has no key of its own yet: nothing to trust without --trust
    assert main([str(good), "--no-database"]) == 2
    assert "no platform signing certificate" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.pdf"), "--trust", str(root)]) == 2
