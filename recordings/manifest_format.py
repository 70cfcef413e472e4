"""The signed recording manifest's format (pure: no database, no storage): signing, and the offline checks a
court's verifier runs on the stored bytes. The document is described in `recordings.manifest`, which builds and
stores it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mediation.canonical import canonical_json
from mediation.errors import IntegrityError
from mediation.keyring import public_key_fingerprint
from recordings.segment import walk_frames

MANIFEST_TYPE = "onedoor-recording-manifest"
MANIFEST_VERSION = 1


def sign_manifest(body: dict[str, Any], signing_key: Ed25519PrivateKey) -> dict[str, Any]:
    pub = signing_key.public_key()
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    sig = signing_key.sign(canonical_json(body))
    return {
        "manifest": body,
        "signature": {
            "alg": "Ed25519",
            "public_key": base64.b64encode(raw).decode(),
            "fingerprint": public_key_fingerprint(pub),
            "value": base64.b64encode(sig).decode(),
        },
    }


def verify_manifest(
    doc: dict[str, Any] | bytes | str, public_key: Ed25519PublicKey | bytes | None = None
) -> dict[str, Any]:
    """Check the signature and return BODY; raises `IntegrityError`.

    Pass the center's public key (as published to the court): without it only integrity is checked against the
    key embedded in the document, which proves nothing about who signed.
    """
    try:
        d = json.loads(doc) if isinstance(doc, bytes | str) else doc
        body, sig = d["manifest"], d["signature"]
        embedded = base64.b64decode(sig["public_key"], validate=True)
        value = base64.b64decode(sig["value"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise IntegrityError("malformed recording manifest") from e
    if sig.get("alg") != "Ed25519" or body.get("type") != MANIFEST_TYPE:
        raise IntegrityError("not a OneDoor recording manifest")
    if public_key is not None:
        expected = (
            public_key
            if isinstance(public_key, bytes)
            else public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        if expected != embedded:
            raise IntegrityError("manifest signed by another key")
    try:
        Ed25519PublicKey.from_public_bytes(embedded).verify(value, canonical_json(body))
    except (InvalidSignature, ValueError) as e:
        raise IntegrityError("recording manifest signature invalid") from e
    return dict(body)


def check_stream(body: dict[str, Any], stream_id: str, data: bytes) -> list[str]:
    """Compare one stored stream's bytes with the manifest, without the key; return the problems found."""
    entry = next((s for s in body["streams"] if s["stream_id"] == stream_id), None)
    if entry is None:
        return [f"{stream_id}: not in the manifest"]
    try:
        header, frames = walk_frames(data)
    except IntegrityError as e:
        return [f"{stream_id}: {e.message}"]
    problems = []
    if hashlib.sha256(header.to_bytes()).hexdigest() != entry["header_sha256"]:
        problems.append(f"{stream_id}: header differs from the manifest")
    got = [hashlib.sha256(f).hexdigest() for f in frames]
    want = entry["segment_sha256"]
    for k in range(max(len(got), len(want))):
        if k >= len(got) or k >= len(want) or got[k] != want[k]:
            problems.append(
                f"{stream_id}: segment {k} differs from the manifest (stored {len(got)}, "
                f"manifest {len(want)})"
            )
            break
    return problems
