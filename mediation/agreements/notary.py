"""Settings and key material for agreements: center keyring, dev PKI (seal + TSA), mediator keys, courts' keys.

Mediators sign agreements with an Ed25519 key held by the server for the mediator role (one per staff user,
`<key_dir>/mediators/staff-<id>.pem`, generated on first use). That is the organization vouching for its mediator;
it is deliberately NOT how parties sign: a party's key is created non-extractable in their browser (R17, ESL 13)
and only its public half is ever on the server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mediation.agreements.pki import DevPKI
from mediation.agreements.tsa import TimestampAuthority
from mediation.keyring import KeyRing, write_secret

log = logging.getLogger(__name__)

FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
)


@dataclass(frozen=True)
class AgreementSettings:
    key_dir: Path
    base_url: str = "http://127.0.0.1:8080"  # for the QR on each agreement: {base_url}/verify/{case code}
    center_name: str = "OneDoor"
    tsa_url: str | None = None  # external RFC 3161 TSA; None = built-in
    tsa_roots_pem: tuple[Path, ...] = ()  # trust anchors of the external TSA
    tsa_auth: tuple[str, str] | None = None
    font_path: Path | None = None  # a TrueType-outline CJK font (TTF/TTC); default: WenQuanYi Zen Hei
    font_index: int = 0

    def font(self) -> tuple[Path, int]:
        if self.font_path is not None:
            return self.font_path, self.font_index
        for p in FONT_CANDIDATES:
            if p.exists():
                return p, 0
        raise FileNotFoundError("no CJK TrueType font found; set AgreementSettings.font_path")

    def verification_url(self, case_code: str) -> str:
        return f"{self.base_url.rstrip('/')}/verify/{case_code}"


class Notary:
    """Everything that signs on the center's side. Build once per process with `Notary.load`."""

    def __init__(self, settings: AgreementSettings, keyring: KeyRing, pki: DevPKI, tsa: TimestampAuthority):
        self.settings = settings
        self.keyring = keyring
        self.pki = pki
        self.tsa = tsa

    @classmethod
    def load(cls, settings: AgreementSettings, keyring: KeyRing, pki: DevPKI | None = None) -> Notary:
        """`pki`: the seal's keys and certificates if already loaded (loading RSA keys checks them: ~0.1 s of CPU,
        which the server spends in a worker thread at start-up, not on its event loop in a request)."""
        pki = pki or DevPKI.load_or_create(settings.key_dir, settings.center_name)
        if settings.tsa_url:
            roots = [
                serialization_der(p.read_bytes()) for p in settings.tsa_roots_pem
            ]
            tsa = TimestampAuthority.external(settings.tsa_url, roots, settings.tsa_auth)
        else:
            tsa = TimestampAuthority.builtin(pki)
        return cls(settings, keyring, pki, tsa)

    def mediator_key(self, staff_id: int) -> Ed25519PrivateKey:
        d = self.settings.key_dir / "mediators"
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o700)
        path = d / f"staff-{staff_id}.pem"
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            assert isinstance(key, Ed25519PrivateKey)
            return key
        log.info("generating the mediator signing key of staff %s", staff_id)
        key = Ed25519PrivateKey.generate()
        write_secret(
            path,
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
        )
        return key


def serialization_der(pem_or_der: bytes) -> bytes:
    from cryptography import x509

    if pem_or_der.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_certificate(pem_or_der).public_bytes(serialization.Encoding.DER)
    return pem_or_der
