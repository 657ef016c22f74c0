"""The ``yizhan`` command: serve, migrate, create-user, demo, check, audit verify,
storage verify, verify-pdf, transcribe."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from server.config import ConfigError, Settings, load_settings


def _settings(overrides: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ)
    env.update(overrides or {})
    return load_settings(env)


def _print_logins(settings: Settings) -> None:
    from server.demo import logins

    print("演示账号 Demo logins:")
    for entry in logins():
        how = entry.password or "验证码 one-time code (see /outbox)"
        print(f"  {entry.role.value:<15} {entry.name:<6} {entry.login:<12} {how}")


# --- commands ---------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    overrides = {}
    if args.host:
        overrides["YIZHAN_HOST"] = args.host
    if args.port:
        overrides["YIZHAN_PORT"] = str(args.port)
    if args.demo:
        overrides["YIZHAN_DEMO"] = "true"
    settings = _settings(overrides)
    from aiohttp import web

    from server import logs
    from server.app import init_app
    from server.db.migrate import NotMigrated

    logs.configure(settings.log_level, settings.log_format)
    app = init_app(settings)
    print(f"一站 Yizhan: {settings.base_url}/  (Ctrl+C to stop)", flush=True)
    try:
        web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None)
    except NotMigrated as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


async def _migrate(settings: Settings) -> int:
    from server.db import migrate
    from server.db.engine import Database

    db = Database(settings.database_url)
    try:
        before, after = await migrate.upgrade(db)
    finally:
        await db.dispose()
    if before == after:
        print(f"database {db.display_url()} is up to date (revision {after})")
    else:
        print(f"database {db.display_url()} migrated: {before or 'empty'} -> {after}")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    return asyncio.run(_migrate(_settings()))


async def _with_database(settings: Settings, work: object) -> int:
    from server.db.engine import Database
    from server.db.migrate import ensure_migrated

    db = Database(settings.database_url)
    try:
        await ensure_migrated(db)
        async with db.transaction(write=True) as session:
            return await work(session)  # type: ignore[operator,no-any-return]
    finally:
        await db.dispose()


def _read_password(args: argparse.Namespace) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("密码 Password: ")
    if getpass.getpass("再次输入 Repeat: ") != first:
        raise SystemExit("error: the passwords differ")
    return first


def cmd_create_user(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.audit import Actor
    from server.db.models import Court
    from server.domain.errors import DomainError
    from server.domain.roles import Role
    from server.i18n import translate_in
    from server.services.users import NewUser, create_user

    settings = _settings()
    role = Role(args.role)
    password = _read_password(args) if role.uses_password else None

    async def work(session: object) -> int:
        from sqlalchemy.ext.asyncio import AsyncSession

        assert isinstance(session, AsyncSession)
        court_id = None
        if args.court:
            court = await session.scalar(select(Court).where(Court.code == args.court))
            if court is None:
                print(f"error: no court with code {args.court!r}", file=sys.stderr)
                return 2
            court_id = court.id
        try:
            user = await create_user(
                session,
                NewUser(
                    role=role,
                    name=args.name,
                    phone=args.phone,
                    username=args.username,
                    email=args.email,
                    password=password,
                    court_id=court_id,
                ),
                Actor(role="cli", name=getpass.getuser()),
            )
        except DomainError as exc:
            print("error: " + translate_in("en", exc.message, **exc.params), file=sys.stderr)
            return 2
        print(f"created user {user.id}: {user.name} ({user.role.value})")
        return 0

    return asyncio.run(_with_database(settings, work))


def cmd_demo(args: argparse.Namespace) -> int:
    from server.demo import seed

    settings = _settings()

    async def work(session: object) -> int:
        created, _ = await seed(session)  # type: ignore[arg-type]
        print("demo court created" if created else "demo court already present")
        return 0

    code = asyncio.run(_with_database(settings, work))
    _print_logins(settings)
    return code


def cmd_check(args: argparse.Namespace) -> int:
    from server.check import run_checks

    return asyncio.run(run_checks(_settings()))


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from server import audit

    async def work(session: object) -> int:
        report = await audit.verify(session)  # type: ignore[arg-type]
        if report.ok:
            print(f"audit chain intact: {report.rows} rows")
            return 0
        print(
            f"audit chain BROKEN at row seq={report.first_broken_seq} (id {report.first_broken_id}): "
            f"{report.problem}"
        )
        return 1

    return asyncio.run(_with_database(_settings(), work))


def cmd_storage_verify(args: argparse.Namespace) -> int:
    import json
    from collections.abc import Callable

    from server.db.engine import Database
    from server.db.migrate import ensure_migrated
    from server.storage_check import verify_recordings, verify_store
    from storage.factory import open_store
    from storage.spool import Spool

    settings = _settings()
    scoped = args.recording is not None or args.session is not None

    def progress(what: str) -> Callable[[int, int], None]:
        def show(done: int, total: int) -> None:
            if sys.stderr.isatty() or done == total:
                end = "\n" if done == total else ""
                print(f"\r{what} checked {done}/{total}", end=end, file=sys.stderr)

        return show

    async def run() -> int:
        database = Database(settings.database_url)
        try:
            await ensure_migrated(database)
            store = open_store(settings.storage_url)
            spool = Spool(settings.data_dir / "spool")
            report = None
            if not scoped:
                report = await verify_store(
                    database,
                    store,
                    sample=args.sample,
                    progress=progress("objects"),
                    skip_recordings=True,
                )
            recordings = await verify_recordings(
                database,
                store,
                spool,
                recording_id=args.recording,
                session_id=args.session,
                strict=args.strict,
                sample=None if scoped else args.sample,
                progress=progress("recordings"),
            )
        finally:
            await database.dispose()
        if scoped and not recordings:
            print("error: no such recording", file=sys.stderr)
            return 2
        ok = (report is None or report.ok) and all(check.ok for check in recordings)
        if args.json:
            objects = None
            if report is not None:
                objects = {
                    "checked": report.checked,
                    "pending": report.pending,
                    "deleted": report.deleted,
                    "problems": report.problems,
                    "ok": report.ok,
                }
            document = {
                "ok": ok,
                "objects": objects,
                "recordings": [check.as_json() for check in recordings],
            }
            print(json.dumps(document, ensure_ascii=False))
            return 0 if ok else 1
        if report is not None:
            for problem in report.problems:
                print(problem)
            removed = f", {report.deleted} removed by the recording purge" if report.deleted else ""
            print(
                f"{report.checked} objects checked, {len(report.problems)} problems, "
                f"{report.pending} still waiting for upload{removed}"
            )
        for check in recordings:
            print(check.line())
            for problem in check.problems:
                print(f"  problem: {problem}")
            for warning in check.warnings:
                print(f"  warning: {warning}")
        return 0 if ok else 1

    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yizhan", description="一站 Yizhan online mediation platform"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web server")
    serve.add_argument("--host", help="listen address (YIZHAN_HOST)")
    serve.add_argument("--port", type=int, help="listen port (YIZHAN_PORT)")
    serve.add_argument(
        "--demo", action="store_true", help="demo mode: open outbox page (YIZHAN_DEMO)"
    )
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    create = sub.add_parser(
        "create-user", help="create an account (staff are asked for a password)"
    )
    create.add_argument(
        "--role",
        required=True,
        choices=["party", "agent", "mediator", "triage_officer", "judge", "clerk", "court_admin"],
    )
    create.add_argument("--name", required=True)
    create.add_argument("--phone")
    create.add_argument("--username")
    create.add_argument("--email")
    create.add_argument("--court", help="court code, for staff")
    create.set_defaults(func=cmd_create_user)

    sub.add_parser("demo", help="seed a demo court and print its logins").set_defaults(
        func=cmd_demo
    )
    sub.add_parser("check", help="show what the configuration resolves to").set_defaults(
        func=cmd_check
    )

    audit_cmd = sub.add_parser("audit", help="audit log tools")
    audit_sub = audit_cmd.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="check the hash chain").set_defaults(func=cmd_audit_verify)
    storage_cmd = sub.add_parser("storage", help="object store tools")
    storage_sub = storage_cmd.add_subparsers(dest="storage_command", required=True)
    verify = storage_sub.add_parser("verify", help="re-hash stored objects, report any mismatch")
    verify.add_argument(
        "--sample", type=int, help="check only this many objects and recordings, at random"
    )
    verify.add_argument("--recording", type=int, help="check only this recording (its id)")
    verify.add_argument("--session", type=int, help="check only this session's recording")
    verify.add_argument(
        "--strict", action="store_true", help="count segments not in the manifest as problems"
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(func=cmd_storage_verify)

    from server.signing.verify_cli import add_arguments

    verify_pdf = sub.add_parser(
        "verify-pdf", help="check that a PDF was issued by the platform and is unchanged"
    )
    add_arguments(verify_pdf)
    verify_pdf.set_defaults(func=cmd_verify_pdf)
    transcribe = sub.add_parser("transcribe", help="print the transcript of an audio or video file")
    transcribe.add_argument("file")
    transcribe.add_argument("--model", help="speech model name or folder (YIZHAN_ASR_MODEL)")
    transcribe.add_argument("--language", help="zh, en, ... (YIZHAN_ASR_LANGUAGE)")
    transcribe.add_argument("--format", choices=["txt", "vtt", "srt", "json"], default="txt")
    transcribe.set_defaults(func=cmd_transcribe)
    return parser


def cmd_verify_pdf(args: argparse.Namespace) -> int:
    from server.signing.verify_cli import run

    return run(args)


def cmd_transcribe(args: argparse.Namespace) -> int:
    settings = _settings({"YIZHAN_ASR_MODEL": args.model} if args.model else None)
    path = Path(args.file)
    if not path.is_file():
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    return asyncio.run(_transcribe(settings, path, args.language, args.format))


async def _transcribe(settings: Settings, path: Path, language: str | None, kind: str) -> int:
    from server.speech import load_engine
    from transcription import formats
    from transcription.files import transcribe_file
    from transcription.models import ModelNotFound

    def note(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def done(fraction: float) -> None:
        print(f"\r{fraction:6.1%}", end="", file=sys.stderr, flush=True)

    try:
        engine = await load_engine(settings, language=language, progress=note)
    except ModelNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        segments = await transcribe_file(path, engine, language=language, progress=done)
    except Exception as exc:  # PyAV's own errors for unreadable media differ by format
        print(f"\nerror: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    finally:
        await engine.close()
    print(file=sys.stderr)
    writers = {
        "txt": formats.to_text,
        "vtt": formats.to_webvtt,
        "srt": formats.to_srt,
        "json": formats.to_json,
    }
    print(writers[kind](formats.cues(segments, {})))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from server.db.migrate import NotMigrated

        if isinstance(exc, NotMigrated):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
