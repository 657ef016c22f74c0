"""The platform's signing key, its certificate chain and the roots that verification trusts.

Configured (``YIZHAN_SIGNING_KEY_FILE``, ``YIZHAN_SIGNING_CERT_FILE``): a PEM private key
(unencrypted) and a PEM file holding the signing certificate first, then its chain; the
self-signed certificates in the chain (or, if none is, the last one) are the trust roots.
Not configured: on first use a platform root CA and a signing certificate issued by it are
made once under ``<data_dir>/signing`` (private keys readable by the owner only) and reused
afterwards, by this process and every other one sharing the data directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from server.config import Settings

FOLDER = "signing"
ROOT_CERT = "root-ca.pem"
ROOT_KEY = "root-ca.key"
SIGNING_CERT = "platform.pem"  # the signing certificate, then the root
SIGNING_KEY = "platform.key"
ROOT_YEARS = 30
SIGNING_YEARS = 10
ORGANISATION = "一站在线调解平台 Yizhan online mediation platform"
ROOT_NAME = "一站平台根证书 Yizhan Platform Root CA"
SIGNING_NAME = "一站平台文书签章 Yizhan Platform Document Signing"
MAX_SEAL_BYTES = 2 * 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class SigningKeyError(RuntimeError):
    """The configured key or certificate cannot be used; the message says which and why."""


@dataclass(frozen=True)
class PlatformKey:
    """What the platform signs with, and what its signatures are checked against."""

    key: PrivateKey
    certificate: x509.Certificate  # the signing certificate
    chain: tuple[x509.Certificate, ...]  # the rest of the chain, up to and with the root
    roots: tuple[x509.Certificate, ...]  # trusted when verifying
    seal_png: bytes | None  # the mediation organisation's e-seal image, if configured

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()


_cache: dict[tuple[str, str, str, str], PlatformKey] = {}
_lock = threading.Lock()


def platform_key(settings: Settings) -> PlatformKey:
    """The platform's key and chain (made on first use when none is configured)."""
    marker = (
        str(settings.data_dir),
        settings.signing_key_file,
        settings.signing_cert_file,
        settings.signing_seal_image,
    )
    with _lock:
        found = _cache.get(marker)
        if found is None:
            found = _load(settings)
            _cache[marker] = found
        return found


def _load(settings: Settings) -> PlatformKey:
    seal = _seal(settings.signing_seal_image)
    if settings.signing_key_file or settings.signing_cert_file:
        if not (settings.signing_key_file and settings.signing_cert_file):
            raise SigningKeyError(
                "YIZHAN_SIGNING_KEY_FILE and YIZHAN_SIGNING_CERT_FILE must be set together"
            )
        key_path, cert_path = Path(settings.signing_key_file), Path(settings.signing_cert_file)
        key_variable, cert_variable = "YIZHAN_SIGNING_KEY_FILE", "YIZHAN_SIGNING_CERT_FILE"
    else:
        folder = ensure_generated(settings.data_dir)
        key_path, cert_path = folder / SIGNING_KEY, folder / SIGNING_CERT
        key_variable = cert_variable = f"the generated key in {folder}"
    key = _read_key(key_path, key_variable)
    certificates = _read_certificates(cert_path, cert_variable)
    certificate, chain = certificates[0], tuple(certificates[1:])
    if certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise SigningKeyError(
            f"{cert_variable}: the first certificate in {cert_path} is not the one of the key"
        )
    roots = tuple(c for c in certificates if c.subject == c.issuer) or (certificates[-1],)
    return PlatformKey(key, certificate, chain, roots, seal)


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from None


def _read_key(path: Path, variable: str) -> PrivateKey:
    data = _read(path, variable)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(
            f"{variable}: {path} is not an unencrypted PEM private key ({exc})"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SigningKeyError(f"{variable}: {path} holds neither an RSA nor an EC key")
    return key


def _read_certificates(path: Path, variable: str) -> list[x509.Certificate]:
    data = _read(path, variable)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise SigningKeyError(
            f"{variable}: {path} is not a PEM certificate chain ({exc})"
        ) from None
    if not certificates:
        raise SigningKeyError(f"{variable}: {path} holds no certificate")
    return certificates


def _seal(path_text: str) -> bytes | None:
    if not path_text:
        return None
    data = _read(Path(path_text), "YIZHAN_SIGNING_SEAL_IMAGE")
    if not data.startswith(PNG_MAGIC) or len(data) > MAX_SEAL_BYTES:
        raise SigningKeyError(
            f"YIZHAN_SIGNING_SEAL_IMAGE: {path_text} is not a PNG image of at most 2 MiB"
        )
    return data


# --- the embedded default: a root CA and a signing certificate, made once ----------------


def ensure_generated(data_dir: Path) -> Path:
    """The folder holding the generated root and signing certificate, made if missing.

    The files are written into a fresh folder that is then renamed into place, so two
    processes starting together end up using the same (first) one."""
    folder = data_dir / FOLDER
    if (folder / SIGNING_CERT).exists():
        return folder
    data_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".signing-", dir=data_dir))
    try:
        _generate(scratch)
        try:
            scratch.rename(folder)
        except OSError:
            if not (folder / SIGNING_CERT).exists():
                raise
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _generate(folder: Path) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(ROOT_NAME)
    root_id = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365 * ROOT_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(root_id, critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    signing = (
        x509.CertificateBuilder()
        .subject_name(_name(SIGNING_NAME))
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365 * SIGNING_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_id),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write_private(folder / ROOT_KEY, root_key)
    _write_private(folder / SIGNING_KEY, key)
    (folder / ROOT_CERT).write_bytes(root.public_bytes(pem))
    (folder / SIGNING_CERT).write_bytes(signing.public_bytes(pem) + root.public_bytes(pem))


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign,  # nonRepudiation
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private(path: Path, key: PrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    with contextlib.suppress(OSError):
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)


def trust_roots(settings: Settings) -> tuple[x509.Certificate, ...]:
    """The roots the platform's signatures are checked against, without making a key:
    for checking files where no key has been made yet (a SigningKeyError then)."""
    if settings.signing_key_file or settings.signing_cert_file:
        return platform_key(settings).roots
    folder = settings.data_dir / FOLDER
    if not (folder / SIGNING_CERT).exists():
        raise SigningKeyError(
            f"no platform signing certificate in {folder}: the platform has not signed anything "
            "with this data directory (or give the root certificate with --trust)"
        )
    return platform_key(settings).roots


def read_roots(path: Path) -> tuple[x509.Certificate, ...]:
    """Root certificates from a PEM file (a court publishes its platform root)."""
    return tuple(_read_certificates(path, "--trust"))
