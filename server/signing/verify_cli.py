"""``yizhan verify-pdf FILE [--json]``: is this PDF one the platform issued, unchanged?

Checks the file's PAdES signatures offline against the platform's root (or the root
certificate given with ``--trust``), and, with the app's settings, looks its SHA-256 up
among the documents the platform issued. Exit status: 0 only when the signature is
intact, valid, trusted and covers the whole file (and, when the database was asked, the
platform issued this very file); 1 when it is not; 2 when the check could not be made.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

from server.config import ConfigError, Settings, load_settings
from server.signing.keys import SigningKeyError, read_roots, trust_roots

if TYPE_CHECKING:  # pyHanko loads only when a file is checked
    from server.signing.pades import Issued, Verdict

MAX_FILE_BYTES = 100 * 1024 * 1024

# the problems of server.signing.pades, in words
PROBLEMS = {
    "changed": "已被改动 changed: the file was altered after it was signed",
    "appended": "已被追加内容 changed: something was added after the last signature",
    "invalid": "签名无效 invalid: the signature does not check out",
    "untrusted": "非本平台签发 not the platform's: signed by a key the platform does not trust",
    "unsigned": "未签名 unsigned: the PDF has no electronic signature",
    "not_pdf": "不是PDF not a PDF, or too damaged to read",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yizhan verify-pdf",
        description="Check that a PDF was issued by the platform and has not been changed.",
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments, on its own parser or on ``yizhan``'s subcommand."""
    parser.add_argument("file", help="the PDF to check")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    parser.add_argument(
        "--trust",
        help="a PEM file of the platform's root certificate (default: the app's own)",
    )
    parser.add_argument(
        "--no-database",
        action="store_true",
        help="do not look the file up among the documents the platform issued",
    )


async def _lookup(settings: Settings, sha256: str) -> Issued | None:
    from server.db.engine import Database
    from server.db.migrate import ensure_migrated
    from server.services.agreement_final import issued

    database = Database(settings.database_url)
    try:
        await ensure_migrated(database)
        async with database.transaction(write=False) as session:
            return await issued(session, sha256)
    finally:
        await database.dispose()


def _json(verdict: Verdict, looked_up: bool, note: str) -> dict[str, Any]:
    issued = verdict.issued
    return {
        "ok": verdict.signed_ok and (issued is not None or not looked_up),
        "signed_ok": verdict.signed_ok,
        "problem": verdict.problem,
        "sha256": verdict.sha256,
        "size": verdict.size,
        "looked_up": looked_up,
        "issued": (
            {
                "document_id": issued.document_id,
                "title": issued.title,
                "number": issued.number,
                "issued_at": issued.issued_at.isoformat(),
            }
            if issued
            else None
        ),
        "note": note,
        "signatures": [
            {
                "field": check.field,
                "intact": check.intact,
                "valid": check.valid,
                "trusted": check.trusted,
                "covers_whole_file": check.covers_whole_file,
                "coverage": check.coverage,
                "docmdp_ok": check.docmdp_ok,
                "signer": check.signer,
                "signed_at": check.signed_at.isoformat() if check.signed_at else None,
            }
            for check in verdict.signatures
        ],
        "details": list(verdict.details),
    }


def _yes(value: bool | None) -> str:
    return "yes" if value else "no"


def _print(path: Path, verdict: Verdict, looked_up: bool, note: str, ok: bool) -> None:
    print(f"file:    {path}")
    print(f"sha256:  {verdict.sha256}")
    for check in verdict.signatures:
        print(
            f"signature {check.field}: intact {_yes(check.intact)}, valid {_yes(check.valid)}, "
            f"trusted {_yes(check.trusted)}, covers the whole file {_yes(check.covers_whole_file)}"
        )
        print(f"  signer: {check.signer or '-'}")
        if check.signed_at:
            print(f"  signed at: {check.signed_at.isoformat()}")
    if verdict.issued is not None:
        issued = verdict.issued
        print(
            f"issued:  yes: {issued.title} {issued.number} ({issued.issued_at.isoformat()})".rstrip()
        )
    elif looked_up:
        print("issued:  no: this file is not among the documents the platform issued")
    else:
        print(f"issued:  not checked{f' ({note})' if note else ''}")
    if ok:
        print("verdict: 有效 VALID: signed by the platform and unchanged")
    elif verdict.problem:
        print(f"verdict: 无效 NOT VALID: {PROBLEMS.get(verdict.problem, verdict.problem)}")
    else:
        print("verdict: 无效 NOT VALID: 未知文件 unknown file: not issued by the platform")


def main(argv: Sequence[str]) -> int:
    return run(build_parser().parse_args(list(argv)))


def run(args: argparse.Namespace) -> int:
    """Check ``args.file``; the exit status (see the module's description)."""
    from server.signing.pades import verify_pdf

    path = Path(args.file)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            print(f"error: {path} is larger than {MAX_FILE_BYTES >> 20} MB", file=sys.stderr)
            return 2
        data = path.read_bytes()
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    settings: Settings | None = None
    note = ""
    try:
        settings = load_settings(dict(os.environ))
    except ConfigError as exc:
        if not args.trust:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        note = "no usable settings here"
    try:
        roots: tuple[x509.Certificate, ...] = (
            read_roots(Path(args.trust))
            if args.trust or settings is None
            else trust_roots(settings)
        )
    except SigningKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verdict = verify_pdf(data, roots)
    looked_up = False
    if not args.no_database and settings is not None:
        try:
            verdict = verdict.with_issued(asyncio.run(_lookup(settings, verdict.sha256)))
            looked_up = True
        except Exception as exc:  # the database may be elsewhere or not set up here
            note = f"database not reachable: {type(exc).__name__}"
    ok = verdict.signed_ok and (verdict.issued is not None or not looked_up)
    if args.json:
        print(json.dumps(_json(verdict, looked_up, note), ensure_ascii=False))
    else:
        _print(path, verdict, looked_up, note, ok)
    return 0 if ok else 1
