"""Vendored browser files match their manifest; the room's JavaScript modules parse."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOM_JS = ROOT / "web" / "static" / "js" / "room"


def _vendor_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "yizhan_vendor_script", ROOT / "scripts" / "vendor.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


vendor = _vendor_script()


def test_every_vendored_file_matches_the_manifest() -> None:
    packages = vendor.load_manifest()
    assert packages, "vendor.json lists no package"
    assert vendor.check(packages) == []


def test_socket_io_client_speaks_protocol_v5() -> None:
    (package,) = [p for p in vendor.load_manifest() if p.name == "socket.io-client"]
    assert package.version.startswith("4."), "python-socketio 5 needs socket.io-client 4.x"
    assert package.integrity.startswith("sha512-")
    assert {f.target for f in package.files} == {"socket.io/socket.io.min.js", "socket.io/LICENSE"}


def test_a_changed_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packages = vendor.load_manifest()
    for package in packages:
        for item in package.files:
            copy = tmp_path / item.target
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes((vendor.VENDOR_DIR / item.target).read_bytes())
    monkeypatch.setattr(vendor, "VENDOR_DIR", tmp_path)
    assert vendor.check(packages) == []
    first = packages[0].files[0]
    (tmp_path / first.target).write_bytes(b"/* edited */")
    assert vendor.check(packages) == [
        f"{first.target}: differs from {packages[0].name}@{packages[0].version}"
    ]
    (tmp_path / first.target).unlink()
    assert vendor.check(packages) == [f"{first.target}: missing"]


def test_the_check_command_passes_offline() -> None:
    assert vendor.main(["--check"]) == 0


def _modules() -> list[Path]:
    return sorted(ROOM_JS.glob("*.js"))


def test_room_modules_exist() -> None:
    names = {p.name for p in _modules()}
    assert "main.js" in names


@pytest.mark.parametrize("module", _modules(), ids=lambda p: p.name)
def test_room_module_parses(module: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: cannot run `node --check` on the room's modules")
    # A .js file outside a package.json with "type": "module" is read as CommonJS by
    # `node --check FILE`; pipe the text as a module so it parses as the browser reads it.
    result = subprocess.run(
        [node, "--input-type=module", "--check"],
        input=module.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{module.name}: {result.stderr}"
