"""Device keys: the WebCrypto ECDSA P-256 key a party's browser creates at first join (R17).

Browsers export the public key as SPKI DER and sign with raw r||s (IEEE P1363, 64 bytes), not DER.
`DeviceKey` is the same thing in Python, for bots, tests and `onedoor simulate`.
"""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from mediation.canonical import canonical_json, sha256_hex
from mediation.errors import InvalidInput

MAX_SPKI = 200


def load_public_key(spki_b64: str) -> ec.EllipticCurvePublicKey:
    try:
        der = base64.b64decode(spki_b64, validate=True)
        if len(der) > MAX_SPKI:
            raise ValueError("too long")
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        raise InvalidInput("device key is not a valid SPKI public key", code="bad_device_key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput("device key must be ECDSA P-256", code="bad_device_key")
    return key


def fingerprint(spki_b64: str) -> str:
    return sha256_hex(base64.b64decode(spki_b64))


def verify_raw(spki_b64: str, signature_b64: str, message: bytes) -> bool:
    key = load_public_key(spki_b64)
    try:
        raw = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        return False
    if len(raw) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def join_message(challenge: str) -> bytes:
    return canonical_json({"type": "onedoor-join", "challenge": challenge})


class DeviceKey:
    """A P-256 key pair that signs like WebCrypto does (raw r||s)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self._key = private_key or ec.generate_private_key(ec.SECP256R1())

    @property
    def spki_b64(self) -> str:
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, message: bytes) -> str:
        r, s = decode_dss_signature(self._key.sign(message, ec.ECDSA(hashes.SHA256())))
        return base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
