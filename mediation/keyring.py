"""The center's keys: an Ed25519 signing key (audit checkpoints, manifests) and the recording master keys.

Development keys are generated on first use into the key directory (mode 0700, files 0600), which is kept
apart from the data directory (database, recordings) so that nothing under the data directory holds key
material (R14). In production the key directory is a mounted secret or the keys come from a KMS.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mediation.canonical import sha256_hex


@contextlib.contextmanager
def key_dir_lock(key_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the key directory while keys are loaded or generated. Several processes start on
    one key directory (the nodes of a cluster, `serve` beside `demo`): without it two of them each generate a
    root CA and the seal certificate of one no longer chains to the root file of the other (seen in CI)."""
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(key_dir / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def write_secret(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def default_key_dir(data_dir: Path) -> Path:
    """Where keys live when no key directory is given: next to the data directory, never inside it (R14)."""
    return Path(data_dir).resolve().parent / "keys"


def public_key_fingerprint(pub: Ed25519PublicKey) -> str:
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    h = sha256_hex(raw)[:32]
    return ":".join(h[i : i + 4] for i in range(0, 32, 4))


@dataclass
class KeyRing:
    key_dir: Path
    signing_key: Ed25519PrivateKey
    master_keys: dict[str, bytes] = field(default_factory=dict)
    current_master_id: str = ""

    @classmethod
    def load_or_create(cls, key_dir: Path) -> KeyRing:
        with key_dir_lock(key_dir):
            return cls._load_or_create(key_dir)

    @classmethod
    def _load_or_create(cls, key_dir: Path) -> KeyRing:
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(key_dir, 0o700)
        sk_path = key_dir / "center-signing.pem"
        for f in (sk_path, key_dir / "master-keys.json"):  # keys written by an older version or by hand: 0600
            if f.exists():
                os.chmod(f, 0o600)
        if sk_path.exists():
            sk = serialization.load_pem_private_key(sk_path.read_bytes(), password=None)
            assert isinstance(sk, Ed25519PrivateKey)
        else:
            sk = Ed25519PrivateKey.generate()
            write_secret(
                sk_path,
                sk.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ),
            )
        ring = cls(key_dir=key_dir, signing_key=sk)
        mk_path = key_dir / "master-keys.json"
        if mk_path.exists():
            doc = json.loads(mk_path.read_text())
            ring.master_keys = {k: base64.b64decode(v) for k, v in doc["keys"].items()}
            ring.current_master_id = doc["current"]
        else:
            ring.add_master_key()
        return ring

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key.public_key()

    @property
    def fingerprint(self) -> str:
        return public_key_fingerprint(self.public_key)

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def add_master_key(self) -> str:
        """Generate a new AES-256 master key, make it current, persist. Old keys stay until nothing uses them."""
        key_id = f"mk-{len(self.master_keys) + 1}-{secrets.token_hex(4)}"
        self.master_keys[key_id] = secrets.token_bytes(32)
        self.current_master_id = key_id
        self._save_master_keys()
        return key_id

    def drop_master_key(self, key_id: str) -> None:
        if key_id == self.current_master_id:
            raise ValueError("cannot drop the current master key")
        self.master_keys.pop(key_id, None)
        self._save_master_keys()

    def _save_master_keys(self) -> None:
        doc = {
            "current": self.current_master_id,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.master_keys.items()},
        }
        write_secret(self.key_dir / "master-keys.json", json.dumps(doc).encode())
