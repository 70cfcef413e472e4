"""Wrapping a recording's data key (pure: no database): under a center master key, and to a court.

Master wrap (`kind="master"`, key_ref = master key id)::

    aad  = "onedoor-dk-wrap-v1|" master_id "|" recording_id
    blob = nonce(12) || AES-256-GCM(master_key, nonce, data_key, aad)

Court wrap (`kind="court"`, key_ref = court id), ECIES with X25519 + HKDF-SHA256 + AES-256-GCM::

    eph  = fresh X25519 key pair;  shared = X25519(eph_private, court_public)
    info = "onedoor-court-wrap-v1|" recording_id
    kek  = HKDF-SHA256(shared, salt = eph_public || court_public, info)
    blob = "ODCW" || 0x01 || eph_public(32) || nonce(12) || AES-256-GCM(kek, nonce, data_key, aad=info)

`court_unwrap()` is what the court's offline verifier uses with its private key; `recordings.keys` stores the
wraps.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mediation.errors import IntegrityError

DATA_KEY_LEN = 32
_MASTER_AAD = b"onedoor-dk-wrap-v1|"
_COURT_MAGIC = b"ODCW\x01"
_COURT_INFO = b"onedoor-court-wrap-v1|"


def master_wrap(master_key: bytes, master_id: str, recording_id: str, data_key: bytes) -> bytes:
    n = secrets.token_bytes(12)
    aad = _MASTER_AAD + f"{master_id}|{recording_id}".encode()
    return n + AESGCM(master_key).encrypt(n, data_key, aad)


def master_unwrap(master_key: bytes, master_id: str, recording_id: str, blob: bytes) -> bytes:
    aad = _MASTER_AAD + f"{master_id}|{recording_id}".encode()
    try:
        return AESGCM(master_key).decrypt(blob[:12], blob[12:], aad)
    except InvalidTag as e:
        raise IntegrityError("wrapped data key does not authenticate", recording=recording_id) from e


def _x25519_public(key: X25519PublicKey | bytes) -> X25519PublicKey:
    return key if isinstance(key, X25519PublicKey) else X25519PublicKey.from_public_bytes(key)


def _raw(pub: X25519PublicKey) -> bytes:
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _court_kek(shared: bytes, eph_pub: bytes, court_pub: bytes, recording_id: str) -> bytes:
    info = _COURT_INFO + recording_id.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_pub + court_pub, info=info).derive(shared)


def court_wrap(court_public: X25519PublicKey | bytes, recording_id: str, data_key: bytes) -> bytes:
    court_pub = _x25519_public(court_public)
    eph = X25519PrivateKey.generate()
    eph_pub, court_raw = _raw(eph.public_key()), _raw(court_pub)
    kek = _court_kek(eph.exchange(court_pub), eph_pub, court_raw, recording_id)
    n = secrets.token_bytes(12)
    ct = AESGCM(kek).encrypt(n, data_key, _COURT_INFO + recording_id.encode())
    return _COURT_MAGIC + eph_pub + n + ct


def court_unwrap(court_private: X25519PrivateKey | bytes, recording_id: str, blob: bytes) -> bytes:
    """Recover a data key with the court's private key (used offline by the court's verifier)."""
    priv = (
        court_private
        if isinstance(court_private, X25519PrivateKey)
        else (X25519PrivateKey.from_private_bytes(court_private))
    )
    if blob[:5] != _COURT_MAGIC or len(blob) != 5 + 32 + 12 + DATA_KEY_LEN + 16:
        raise IntegrityError("not a court key wrap")
    eph_pub, n, ct = blob[5:37], blob[37:49], blob[49:]
    kek = _court_kek(
        priv.exchange(X25519PublicKey.from_public_bytes(eph_pub)),
        eph_pub,
        _raw(priv.public_key()),
        recording_id,
    )
    try:
        return AESGCM(kek).decrypt(n, ct, _COURT_INFO + recording_id.encode())
    except InvalidTag as e:
        raise IntegrityError("court key wrap does not authenticate (wrong key or recording)") from e
