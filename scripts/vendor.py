"""Keep the third-party browser files in web/static/vendor/ in step with their manifest.

    .venv/bin/python scripts/vendor.py                       # re-download every package in vendor.json
    .venv/bin/python scripts/vendor.py --check               # verify the files on disk (no network)
    .venv/bin/python scripts/vendor.py --set socket.io-client@4.8.2   # pin another version, then refresh

The manifest (web/static/vendor/vendor.json) names each npm package, its version, the
registry's `dist.integrity` of the tarball, and the files taken from it with their own
sha512.  A refresh asks https://registry.npmjs.org/<package>/<version> for the tarball,
checks it against `dist.integrity` (and against the integrity already pinned in the
manifest, since a published version never changes), and copies the listed files out of
it byte for byte.  Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENDOR_DIR = ROOT / "web" / "static" / "vendor"
MANIFEST = VENDOR_DIR / "vendor.json"
REGISTRY = "https://registry.npmjs.org"
TIMEOUT_S = 60
MAX_TARBALL = 64 * 1024 * 1024


class VendorError(Exception):
    """A download, an integrity check or the manifest itself is wrong."""


@dataclass(frozen=True)
class VendoredFile:
    source: str  # path inside the package (without npm's leading "package/")
    target: str  # path under web/static/vendor/
    sha512: str  # "sha512-<base64>", as npm writes integrity values; "" until refreshed


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity of the tarball; "" until refreshed
    files: tuple[VendoredFile, ...]


def integrity_of(data: bytes) -> str:
    """Subresource-integrity style sha512 of some bytes."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise VendorError(f"vendor.json: {what} must be a string")
    return value


def _safe_target(target: str) -> Path:
    path = (VENDOR_DIR / target).resolve()
    if VENDOR_DIR.resolve() not in path.parents:
        raise VendorError(f"vendor.json: target {target!r} leaves {VENDOR_DIR.name}/")
    return path


def load_manifest(path: Path = MANIFEST) -> list[Package]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise VendorError(f"cannot read {path.name}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("packages"), list):
        raise VendorError("vendor.json: expected an object with a 'packages' list")
    packages: list[Package] = []
    for entry in raw["packages"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("files"), list):
            raise VendorError("vendor.json: each package needs 'package', 'version' and 'files'")
        files = tuple(
            VendoredFile(
                source=_text(item.get("source"), "files[].source"),
                target=_text(item.get("target"), "files[].target"),
                sha512=_text(item.get("sha512", ""), "files[].sha512"),
            )
            for item in entry["files"]
            if isinstance(item, dict)
        )
        if len(files) != len(entry["files"]) or not files:
            raise VendorError("vendor.json: 'files' must be a non-empty list of objects")
        for item in files:
            _safe_target(item.target)
        packages.append(
            Package(
                name=_text(entry.get("package"), "package"),
                version=_text(entry.get("version"), "version"),
                integrity=_text(entry.get("integrity", ""), "integrity"),
                files=files,
            )
        )
    return packages


def save_manifest(packages: list[Package], path: Path = MANIFEST) -> None:
    data = {
        "comment": "Third-party browser files, refreshed only by scripts/vendor.py; never edit them.",
        "registry": REGISTRY,
        "packages": [
            {
                "package": p.name,
                "version": p.version,
                "integrity": p.integrity,
                "files": [
                    {"source": f.source, "target": f.target, "sha512": f.sha512} for f in p.files
                ],
            }
            for p in packages
        ],
    }
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def check(packages: list[Package]) -> list[str]:
    """Problems with the files on disk (empty when every file matches its recorded hash)."""
    problems: list[str] = []
    for package in packages:
        if not package.integrity:
            problems.append(f"{package.name}: no tarball integrity recorded (run a refresh)")
        for item in package.files:
            path = _safe_target(item.target)
            if not item.sha512:
                problems.append(f"{item.target}: no sha512 recorded (run a refresh)")
            elif not path.is_file():
                problems.append(f"{item.target}: missing")
            elif integrity_of(path.read_bytes()) != item.sha512:
                problems.append(f"{item.target}: differs from {package.name}@{package.version}")
    return problems


def _get(url: str) -> bytes:
    if urllib.parse.urlsplit(url).scheme != "https":
        raise VendorError(f"refusing a non-HTTPS download: {url}")
    request = urllib.request.Request(url, headers={"Accept": "application/json, */*"})  # noqa: S310 (https only, checked above)
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
        data: bytes = response.read(MAX_TARBALL + 1)
    if len(data) > MAX_TARBALL:
        raise VendorError(f"{url}: larger than {MAX_TARBALL} bytes")
    return data


def fetch_metadata(name: str, version: str) -> dict[str, Any]:
    url = f"{REGISTRY}/{urllib.parse.quote(name, safe='@')}/{urllib.parse.quote(version)}"
    try:
        meta = json.loads(_get(url))
    except (OSError, json.JSONDecodeError) as exc:
        raise VendorError(f"{name}@{version}: registry request failed: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("version") != version:
        raise VendorError(f"{name}@{version}: the registry has no such version")
    return meta


def extract(tarball: bytes, source: str) -> bytes:
    """One regular file out of an npm tarball, whose entries all start with 'package/'."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for member in archive.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) == 2 and parts[1] == source:
                if not member.isreg():
                    raise VendorError(f"{source}: not a regular file in the tarball")
                handle = archive.extractfile(member)
                if handle is None:
                    raise VendorError(f"{source}: cannot be read from the tarball")
                return handle.read()
    raise VendorError(f"{source}: not in the tarball")


def refresh(package: Package) -> Package:
    meta = fetch_metadata(package.name, package.version)
    dist = meta.get("dist")
    if not isinstance(dist, dict):
        raise VendorError(f"{package.name}@{package.version}: no 'dist' in the registry answer")
    expected = _text(dist.get("integrity"), "dist.integrity")
    tarball_url = _text(dist.get("tarball"), "dist.tarball")
    if not expected.startswith("sha512-"):
        raise VendorError(f"{package.name}: the registry gives no sha512 integrity")
    if package.integrity and package.integrity != expected:
        raise VendorError(
            f"{package.name}@{package.version}: the registry now reports {expected}, "
            f"the manifest pinned {package.integrity}; refusing to continue"
        )
    tarball = _get(tarball_url)
    if integrity_of(tarball) != expected:
        raise VendorError(f"{package.name}@{package.version}: the tarball fails its integrity")
    files: list[VendoredFile] = []
    contents: list[tuple[Path, bytes]] = []
    for item in package.files:
        data = extract(tarball, item.source)
        contents.append((_safe_target(item.target), data))
        files.append(VendoredFile(item.source, item.target, integrity_of(data)))
    for path, data in contents:  # write only once everything was found and verified
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)
    return Package(package.name, package.version, expected, tuple(files))


def _pin(packages: list[Package], spec: str) -> list[Package]:
    name, sep, version = spec.rpartition("@")
    if not sep or not name or not version:
        raise VendorError(f"--set expects PACKAGE@VERSION, not {spec!r}")
    if name not in {p.name for p in packages}:
        raise VendorError(f"{name} is not in vendor.json")
    return [
        Package(p.name, version, "", tuple(VendoredFile(f.source, f.target, "") for f in p.files))
        if p.name == name and p.version != version
        else p
        for p in packages
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="verify files on disk, offline")
    parser.add_argument("--set", metavar="PACKAGE@VERSION", help="pin a version, then refresh")
    args = parser.parse_args(argv)
    try:
        packages = load_manifest()
        if args.check:
            problems = check(packages)
            for problem in problems:
                print(problem, file=sys.stderr)
            if not problems:
                print(f"{sum(len(p.files) for p in packages)} vendored files match vendor.json")
            return 1 if problems else 0
        if args.set:
            packages = _pin(packages, args.set)
        refreshed = []
        for package in packages:
            refreshed.append(refresh(package))
            print(f"{package.name}@{package.version}: {len(package.files)} files verified")
        save_manifest(refreshed)
    except VendorError as exc:
        print(f"vendor: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
