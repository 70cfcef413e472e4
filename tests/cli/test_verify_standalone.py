"""`onedoor verify` runs without the server's stack: no database, web, Socket.IO or media library is imported.

A real bundle (sealed agreement, ruling, audit extract, and an encrypted recording made with the real segment
format, manifest signature and court key wrap) is verified in a child interpreter whose import system refuses
every banned package; the same holds statically, over the source of every module the verifier imports.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import hashlib
import secrets
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mediation.agreements import judging, zipfmt
from mediation.agreements.bundle import RecordingPart, build_bundle
from mediation.agreements.courts import CourtDirectory
from mediation.agreements.notary import AgreementSettings, Notary
from mediation.canonical import canonical_json
from mediation.db import Base, Database
from mediation.keyring import KeyRing
from recordings.keywrap import court_wrap
from recordings.manifest_format import MANIFEST_TYPE, MANIFEST_VERSION, sign_manifest
from recordings.segment import Header, SegmentSealer, frame_sha256
from tests.agreements.conftest import make_world
from tests.agreements.helpers import bundle_documents, sealed_agreement, submitted_application

ROOT = Path(__file__).resolve().parents[2]
BANNED = {"sqlalchemy", "alembic", "asyncpg", "aiosqlite", "aiohttp", "socketio", "engineio", "aiortc", "aioice",
          "av", "redis", "boto3", "botocore", "pydantic"}
OURS = {"mediation", "recordings", "signaling", "media", "web"}
VERIFIER = ["signaling.cli", "signaling.cli_verify"]  # the command and its dispatcher; the rest is what they import

# Runs `onedoor` (signaling.cli:main) with every banned package refused at import. One exception, and only for
# the importer named: pyHanko (the PDF seal and RFC 3161 checks) imports aiohttp unconditionally in
# `pyhanko.sign.timestamps` — a hard dependency of pyHanko itself, never used offline. Prints what got loaded.
BLOCKED_ONEDOOR = f"""
import sys
BANNED = {sorted(BANNED)!r}
THIRD_PARTY_OK = {{"pyhanko", "pyhanko_certvalidator"}}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top not in BANNED:
            return None
        f = sys._getframe(1)
        while f is not None and f.f_code.co_filename.startswith("<frozen"):
            f = f.f_back
        importer = (f.f_globals.get("__name__") or "") if f is not None else ""
        if importer.partition(".")[0] in THIRD_PARTY_OK | {{top}}:
            return None
        raise ImportError(f"{{name}} is blocked (imported by {{importer}})")

sys.meta_path.insert(0, Blocker())
from signaling.cli import main
code = main(sys.argv[1:])
print("LOADED:" + ",".join(sorted({{m.partition(".")[0] for m in sys.modules}} & set(BANNED))))
raise SystemExit(code)
"""


def onedoor_blocked(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKED_ONEDOOR, *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def recording(signing_key: Ed25519PrivateKey, court_public_b64: str, rid: str = "rec-1") -> RecordingPart:
    """Two streams of three encrypted segments each, in the stored format, with a signed manifest and the data
    key wrapped to the court (what recordings/ produces, without a server)."""
    dk = secrets.token_bytes(32)
    files, streams = {}, []
    for sid in ("a.0", "b.0"):
        header = Header(rid, sid, "sess-1", "dk-test", secrets.token_bytes(7))
        sealer = SegmentSealer(dk, header)
        frames = [bytes(sealer.seal(f"{sid} segment {k} ".encode() * 40, last=k == 2)) for k in range(3)]
        files[f"{sid}.odr"] = header.to_bytes() + b"".join(frames)
        streams.append({"stream_id": sid, "source_id": sid[0], "part": 0, "kinds": ["video", "audio"],
                        "width": 640, "height": 360, "first_pts_ms": 0, "last_pts_ms": 1500, "status": "complete",
                        "failed_at": None, "segments": 3,
                        "header_sha256": hashlib.sha256(header.to_bytes()).hexdigest(),
                        "segment_sha256": [frame_sha256(f) for f in frames]})
    body = {"type": MANIFEST_TYPE, "version": MANIFEST_VERSION, "recording_id": rid, "session_id": "sess-1",
            "case_code": "QH-HX-2026-000123", "record_type": "session", "privileged": False, "status": "stopped",
            "problem": None, "key_id": "dk-test", "started_at": "2026-01-05T09:00:00+00:00",
            "stopped_at": "2026-01-05T09:00:01.500000+00:00", "duration_ms": 1500,
            "participants": [{"source_id": s, "label": s.upper(), "consented_at": None} for s in "ab"],
            "streams": streams, "segments_total": 6, "events": []}
    return RecordingPart(manifest=canonical_json(sign_manifest(body, signing_key)), files=files,
                         wrapped_key=court_wrap(base64.b64decode(court_public_b64), rid, dk), recording_id=rid)


async def make_bundle(tmp_path: Path) -> tuple[bytes, Path, Path, str]:
    """The bundle, the key directory (center key), the court's recording key (PEM) and the center fingerprint."""
    key_dir = tmp_path / "keys"
    keyring = KeyRing.load_or_create(key_dir)
    notary = await asyncio.to_thread(  # a new RSA seal key: known setup, off the loop
        Notary.load, AgreementSettings(key_dir=key_dir, base_url="https://onedoor.example.cn",
                                       center_name="湟中区综治中心"), keyring)
    courts = CourtDirectory.load_or_create_dev(key_dir)
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        w = await make_world(db, notary, courts)
        app = await submitted_application(w, await sealed_agreement(w))
        async with db.session() as s:
            await judging.accept(s, app.id, judge_id=w.judge_id)
            await judging.rule(s, app.id, judge_id=w.judge_id, outcome="confirmed", courts=courts)
        court_id = app.court_id
        rec = recording(keyring.signing_key, courts.get(court_id).recording_public_key)
        async with db.session() as s:
            bundle = await build_bundle(s, app.id, judge_id=w.judge_id, notary=notary, courts=courts,
                                        recordings=[rec], reason="审查",
                                        documents=await bundle_documents(w, court_id))
    finally:
        await db.close()
    court_pem = tmp_path / "court-wrap.pem"
    court_pem.write_bytes(courts.recording_key(court_id).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return bundle.data, key_dir, court_pem, keyring.fingerprint


async def test_verify_runs_with_the_server_stack_blocked(tmp_path: Path) -> None:
    data, key_dir, court_pem, fingerprint = await make_bundle(tmp_path)
    path = tmp_path / "bundle.zip"
    path.write_bytes(data)

    # pinned by the local key directory; recordings decrypted with the court's key
    r = await asyncio.to_thread(onedoor_blocked, "verify", str(path), "--court-key", str(court_pem),
                                "--key-dir", str(key_dir), "--data-dir", str(tmp_path / "data"))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for needle in ("manifest: signed by the center", "timestamp: agreement effective", "PDF seal: PAdES B-LT",
                   "ruling: 裁定确认调解协议有效", "audit chain:",
                   "recording recording/1: manifest signed by the center; 2 streams, 6 segments, 1.5 s",
                   "recording recording/1: decrypted with the court key: all 2 streams authentic",
                   "授权委托书.pdf): decrypted with the court key", "application document power_of_attorney doc-",
                   "\nVALID\n"):
        assert needle in out, (needle, out)
    loaded = out.rstrip().rsplit("LOADED:", 1)[1].split(",")
    assert set(loaded) <= {"aiohttp", ""}, loaded  # only pyHanko's own aiohttp import went through

    # one flipped byte inside a member: the zip's CRC catches it
    member = zipfmt.read(data)["recording/1/files/a.0.odr"]
    at = data.index(member) + len(member) // 2
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:])
    r = await asyncio.to_thread(onedoor_blocked, "verify", str(flipped), "--fingerprint", fingerprint)
    assert r.returncode == 1 and "INVALID — zip: member 'recording/1/files/a.0.odr': CRC mismatch" in r.stdout, \
        r.stdout + r.stderr

    # the same byte flipped and the zip rebuilt around it: the signed manifest's hash catches it
    members = zipfmt.read(data)
    m = bytearray(members["recording/1/files/a.0.odr"])
    m[len(m) // 2] ^= 0x01
    rebuilt = tmp_path / "rebuilt.zip"
    rebuilt.write_bytes(zipfmt.write({**members, "recording/1/files/a.0.odr": bytes(m)}))
    r = await asyncio.to_thread(onedoor_blocked, "verify", str(rebuilt), "--fingerprint", fingerprint)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "INVALID — file recording/1/files/a.0.odr: SHA-256 does not match the manifest" in r.stdout, r.stdout


def test_the_blocker_blocks_and_other_commands_still_load_the_server() -> None:
    """Control: the same child refuses a server command (it needs SQLAlchemy), so the pass above means something."""
    r = onedoor_blocked("db", "upgrade", "--data-dir", "/nonexistent/onedoor-test")
    assert r.returncode != 0 and " is blocked (imported by " in r.stderr, r.stderr[-2000:]  # the server stack


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(name: str, path: Path) -> set[str]:
    """Every module an import statement in `path` names (anywhere in the file, lazy imports included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = node.module or ""
            if node.level:
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}")}
    return found


def verifier_modules() -> dict[str, set[str]]:
    """Our modules the verifier imports, transitively (with their parent packages): name -> what it imports."""
    seen: dict[str, set[str]] = {}
    todo = list(VERIFIER)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        assert path is not None, name
        seen[name] = _imports(name, path)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo += parents + [m for m in seen[name] if m.partition(".")[0] in OURS and _module_file(m)]
    return seen


def test_verifier_modules_import_no_server_library() -> None:
    modules = verifier_modules()
    bad = {name: sorted(m for m in imports if m.partition(".")[0] in BANNED | {"reportlab"})
           for name, imports in modules.items()}
    assert not {k: v for k, v in bad.items() if v}, bad
    assert not [m for m in modules if m.partition(".")[0] in ("media", "web")]
    # the traversal reaches the formats the verifier reads (docs/bundle.md lists the set)
    for expected in ("mediation.agreements.verify", "mediation.agreements.zipfmt", "mediation.audit_chain",
                     "mediation.agreements.seal_check", "recordings.manifest_format", "recordings.segment",
                     "recordings.keywrap", "recordings.decrypt", "recordings.ffmpeg"):
        assert expected in modules, sorted(modules)
