"""`onedoor verify BUNDLE.zip [--court-key KEY] [--export FILE] [--fingerprint FP | --center-key PEM]`.

Fully offline (docs/bundle.md): checks the bundle against the pinned center key — its fingerprint (printed on every
agreement), a PEM public key, or by default the center key in the local key directory. Prints a readable report;
exit 0 when valid, 1 naming the first failing item, 2 for a usage error.

Recordings: the signed recording manifest (same center key) and every stored segment's hash are checked without
any key. With `--court-key` (the court's X25519 private key, PEM) the data key is unwrapped and every segment is
decrypted and authenticated; with `--export FILE` too, the recording is written as one playable Matroska file
(every original track, no transcoding). recordings/export.py exports from the server's storage and database; the
glue here feeds the same decrypting reader and ffmpeg runner (`recordings.decrypt`, `recordings.ffmpeg`) from the
bundle's files instead.

Case-file documents (photos, PDFs): their stored bytes are checked against the upload's audit entry without any
key; with `--court-key` each one's data key is unwrapped and the document decrypted and authenticated, and the
plaintext must hash to the manifest's `sha256` (`Documents`).

Dispatched by `signaling.cli`; like everything it imports, this module loads no database, web, Socket.IO or media
library (tests/cli/test_verify_standalone.py), so a court can run it without the server's stack.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from mediation.agreements import zipfmt
from mediation.agreements.verify import averify_bundle
from mediation.errors import IntegrityError
from mediation.keyring import default_key_dir
from recordings.decrypt import DecryptedStream
from recordings.ffmpeg import ExportFailed, raw_output_args, run_ffmpeg
from recordings.keywrap import court_unwrap
from recordings.manifest_format import check_stream, verify_manifest
from recordings.segment import open_stream
from recordings.sources import screen_owner


class _BundleStorage:
    """A `recordings.decrypt.StreamSource` over one recording's files in a bundle."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    async def read_stream(self, recording_id: str, stream_id: str) -> AsyncIterator[bytes]:
        yield self.files[f"{stream_id}.odr"]


class Recordings:
    """The `verify_recording` hook of the bundle verifier, plus decryption and export with the court's key."""

    def __init__(self, bundle: dict[str, bytes], court_key: X25519PrivateKey | None, export: Path | None) -> None:
        self.center = _bundle_center_key(bundle)
        manifest = json.loads(bundle.get("manifest.json", b"{}"))
        self.wrapped = {r["recording_id"]: bundle.get(r["wrapped_key"], b"") for r in manifest.get("recordings", [])}
        self.court_key, self.export = court_key, export
        self.count = 0

    def __call__(self, files: dict[str, bytes], doc: dict[str, Any]) -> list[str]:
        body = verify_manifest(doc, self.center)  # raises IntegrityError
        names = {f"{st['stream_id']}.odr" for st in body["streams"]}
        extra = sorted(set(files) - names)
        if extra or names - set(files):
            raise IntegrityError(f"stream files differ from the manifest: extra {extra}, "
                                 f"missing {sorted(names - set(files))}")
        for st in body["streams"]:
            problems = check_stream(body, st["stream_id"], files[f"{st['stream_id']}.odr"])
            if problems:
                raise IntegrityError("; ".join(problems))
        lines = [f"manifest signed by the center; {len(body['streams'])} streams, {body['segments_total']} segments, "
                 f"{(body['duration_ms'] or 0) / 1000:.1f} s, every stored segment matches"]
        screens: dict[str, list[dict[str, Any]]] = {}
        for st in body["streams"]:
            if screen_owner(st["source_id"]) is not None:
                screens.setdefault(st["source_id"], []).append(st)
        for source, parts in sorted(screens.items()):  # a shared screen is a recorded source of its own
            big = max(parts, key=lambda x: (x.get("width") or 0) * (x.get("height") or 0))
            lines.append(f"shared screen {source}: {len(parts)} stream(s) {', '.join(x['stream_id'] for x in parts)}"
                         f", {big.get('width')}x{big.get('height')}")
        if self.court_key is None:
            return lines
        key = court_unwrap(self.court_key, body["recording_id"], self.wrapped.get(body["recording_id"], b""))
        self.count += 1
        out = None
        if self.export is not None:
            out = self.export if self.count == 1 else self.export.with_stem(f"{self.export.stem}-{self.count}")
        lines.append(_run(export_recording(files, body, key, out)))
        return lines


class Documents:
    """The `verify_document` hook of the bundle verifier: decrypt a case-file document with the court's key."""

    def __init__(self, court_key: X25519PrivateKey) -> None:
        self.court_key = court_key
        self.count = 0

    def __call__(self, meta: dict[str, Any], stored: bytes, wrapped: bytes) -> str:
        key = court_unwrap(self.court_key, meta["id"], wrapped)
        header, parts, status = open_stream(key, stored)
        if header.recording_id != meta["id"] or header.stream_id != "content" or not status.complete:
            raise IntegrityError(f"the document stream does not authenticate ({status.describe()})")
        plain = b"".join(parts)
        if hashlib.sha256(plain).hexdigest() != meta["sha256"] or len(plain) != meta["size"]:
            raise IntegrityError("the decrypted document differs from the manifest's hash")
        self.count += 1
        return f"decrypted with the court key: {len(plain)} bytes, SHA-256 of the content matches"


def _run(coro: Any) -> Any:
    """The verifier calls the hook from its event loop; the export needs one of its own (a worker thread)."""
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _bundle_center_key(bundle: dict[str, bytes]) -> bytes | None:
    """The bundle's center key (the verifier pins it before any recording is looked at)."""
    try:
        key = serialization.load_pem_public_key(bundle["center/public-key.pem"])
    except (KeyError, ValueError):
        return None
    if not isinstance(key, Ed25519PublicKey):
        return None
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


async def export_recording(files: dict[str, bytes], body: dict[str, Any], data_key: bytes, out: Path | None) -> str:
    """Decrypt and authenticate every segment; with `out`, remux every track into one Matroska file."""
    rid, streams = body["recording_id"], body["streams"]
    storage = _BundleStorage(files)
    readers = [DecryptedStream(storage, data_key, rid, st["stream_id"]) for st in streams]
    if out is None:
        for reader in readers:
            async for _ in reader:
                pass
        _complete(readers)
        return f"decrypted with the court key: all {len(readers)} streams authentic"
    labels = {p["source_id"]: p["label"] for p in body.get("participants", [])}
    tail = raw_output_args([(st["source_id"], st["stream_id"], st["kinds"]) for st in streams], labels, out)
    try:
        await run_ffmpeg(readers, tail, out)
    except ExportFailed as e:
        raise IntegrityError(f"ffmpeg could not write the export: {e.detail.get('detail', '')[-500:]}") from None
    _complete(readers)
    data = await asyncio.to_thread(out.read_bytes)
    digest = hashlib.sha256(data).hexdigest()
    return f"decrypted with the court key and exported to {out} ({len(data)} bytes, sha256 {digest[:16]}…)"


def _complete(readers: list[DecryptedStream]) -> None:
    bad = [f"{r.stream_id}: {r.status.describe()}" for r in readers if not r.status.complete]
    if bad:
        raise IntegrityError("decryption failed: " + "; ".join(bad))


def _pin(a: argparse.Namespace) -> str | bytes | None:
    """The pinned center key: --fingerprint, --center-key, or the center key in the local key directory."""
    if a.fingerprint:
        return str(a.fingerprint)
    if a.center_key:
        return Path(a.center_key).read_bytes()
    key_dir = Path(a.key_dir) if a.key_dir else default_key_dir(Path(a.data_dir))
    path = key_dir / "center-signing.pem"
    if not path.exists():
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def verify(a: argparse.Namespace) -> int:
    pinned = _pin(a)
    if pinned is None:
        return _usage("pin the center key: --fingerprint FP (printed on the agreement) or --center-key PEM")
    if a.export and not a.court_key:
        return _usage("--export needs --court-key (the recordings are encrypted to the court)")
    court_key = None
    if a.court_key:
        k = serialization.load_pem_private_key(Path(a.court_key).read_bytes(), password=None)
        if not isinstance(k, X25519PrivateKey):
            return _usage("--court-key must be the court's X25519 private key (PEM)")
        court_key = k
    data = Path(a.bundle).read_bytes()
    try:
        members = zipfmt.read(data)
    except zipfmt.ZipFormatError:
        members = {}  # the verifier reports it as the first failing item
    hook = Recordings(members, court_key, Path(a.export) if a.export else None)
    docs = Documents(court_key) if court_key is not None else None
    report = asyncio.run(averify_bundle(data, pinned, verify_recording=hook, verify_document=docs))
    print(report.text())
    return 0 if report.ok else 1
