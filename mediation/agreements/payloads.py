"""Wire formats of what gets signed (R16, R17): pure functions, no database — a verifier rebuilds these bytes.

What a signer signs — `signing_payload` — is the UTF-8 canonical JSON (mediation.canonical) of

    {"type": "onedoor-agreement-signature", "case": <case code>, "agreement_id": <int>, "version": <int>,
     "content_sha256": <hex sha256 of the version's canonical content>, "pdf_sha256": <hex sha256 of the
     unsigned PDF rendering>, "signer": "person:<id>" | "staff:<id>", "role": "party" | "agent" | "mediator"}

A browser signs those exact bytes with `crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"}, key, bytes)`,
which yields the 64-byte IEEE P1363 r||s value; it is sent base64-encoded and stored as sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from mediation.canonical import canonical_json, sha256_hex
from mediation.errors import InvalidInput

SIGNATURE_TYPE = "onedoor-agreement-signature"
APPLICATION_TYPE = "onedoor-confirmation-application-signature"
ECDSA_P256 = "ecdsa-p256-sha256-p1363"
ED25519 = "ed25519"


def payload_bytes(
    *, case_code: str, agreement_id: int, version: int, content_sha256: str, pdf_sha256: str, signer: str, role: str
) -> bytes:
    return canonical_json({
        "type": SIGNATURE_TYPE, "case": case_code, "agreement_id": agreement_id, "version": version,
        "content_sha256": content_sha256, "pdf_sha256": pdf_sha256, "signer": signer, "role": role,
    })


def application_payload_bytes(*, case_code: str, application_id: int, document_sha256: str, signer: str) -> bytes:
    return canonical_json({
        "type": APPLICATION_TYPE, "case": case_code, "application_id": application_id,
        "document_sha256": document_sha256, "signer": signer,
    })


def key_fingerprint(spki_der: bytes) -> str:
    return sha256_hex(spki_der)


def p1363_to_der(sig: bytes) -> bytes:
    """WebCrypto ECDSA output (r||s, 32 bytes each for P-256) -> the DER SEQUENCE that OpenSSL verifies."""
    if len(sig) != 64:
        raise ValueError("a P-256 WebCrypto signature is 64 bytes (r||s)")
    return encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))


def decode_b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput(f"{what} 不是有效的 base64 / {what} is not valid base64", code="bad_encoding") from e


def verify_signature(algorithm: str, public_key_der: bytes, signature: bytes, message: bytes) -> bool:
    """True iff `signature` over `message` verifies with the SPKI DER public key. Never raises on bad input."""
    try:
        pub = serialization.load_der_public_key(public_key_der)
        if algorithm == ECDSA_P256:
            if not isinstance(pub, ec.EllipticCurvePublicKey) or pub.curve.name != "secp256r1":
                return False
            pub.verify(p1363_to_der(signature), message, ec.ECDSA(hashes.SHA256()))
        elif algorithm == ED25519:
            if not isinstance(pub, Ed25519PublicKey):
                return False
            pub.verify(signature, message)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def effect_record(
    *, case_code: str, agreement_id: int, version: int, content_sha256: str, pdf_sha256: str,
    signatures: list[dict[str, Any]], effective_at: str,
) -> bytes:
    """The record timestamped when the last party signs: which signatures made the agreement effective, when."""
    return canonical_json({
        "type": "onedoor-agreement-effective", "case": case_code, "agreement_id": agreement_id, "version": version,
        "content_sha256": content_sha256, "pdf_sha256": pdf_sha256, "effective_at": effective_at,
        "signatures": sorted(
            ({"signer": x["signer"], "role": x["role"],
              "signature_sha256": sha256_hex(base64.b64decode(x["signature"]))} for x in signatures),
            key=lambda d: d["signer"],
        ),
    })


def signatures_json(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps(rows, ensure_ascii=False, indent=1, sort_keys=True).encode()
