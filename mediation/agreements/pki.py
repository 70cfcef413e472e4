"""Development PKI of a center: a root CA, the seal certificate (PAdES) and the built-in TSA certificate.

Generated on first use into `<key_dir>/pki/` (directory 0700, private keys 0600), beside the center keys of
`mediation.keyring` and never under the data directory. In production the seal certificate comes from a real CA
(an SM2 seal per GB/T 38540 can plug in behind the same `SealIdentity`, R19) and the TSA is external (`tsa_url`).
The dev TSA key is RSA because pyHanko's in-process timestamper signs with RSA only.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mediation.keyring import key_dir_lock, write_secret

log = logging.getLogger(__name__)
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class CertKey:
    cert: x509.Certificate
    key: PrivateKey

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def asn1_cert(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.cert_der)

    def asn1_key(self) -> asn1_keys.PrivateKeyInfo:
        der = self.key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return asn1_keys.PrivateKeyInfo.load(der)


@dataclass(frozen=True)
class DevPKI:
    root: CertKey
    seal: CertKey
    tsa: CertKey

    @classmethod
    def load_or_create(cls, key_dir: Path, center_name: str = "OneDoor") -> DevPKI:
        with key_dir_lock(key_dir):  # one generator at a time across processes (the nodes of a cluster)
            return cls._load_or_create(key_dir, center_name)

    @classmethod
    def _load_or_create(cls, key_dir: Path, center_name: str) -> DevPKI:
        pki_dir = key_dir / "pki"
        pki_dir.mkdir(parents=True, exist_ok=True)
        pki_dir.chmod(0o700)
        root = _load(pki_dir, "root-ca")
        if root is None:
            log.info("generating the development PKI in %s", pki_dir)
            root = _root(center_name)
            _save(pki_dir, "root-ca", root)
        seal = _load(pki_dir, "seal")
        if seal is None:
            seal = _leaf(root, f"{center_name} 电子印章 (dev seal)", ec.generate_private_key(ec.SECP256R1()), tsa=False)
            _save(pki_dir, "seal", seal)
        tsa = _load(pki_dir, "tsa")
        if tsa is None:
            rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            tsa = _leaf(root, f"{center_name} Time Stamping Authority (dev)", rsa_key, tsa=True)
            _save(pki_dir, "tsa", tsa)
        return cls(root=root, seal=seal, tsa=tsa)


def _name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "OneDoor development"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _root(center_name: str) -> CertKey:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    name = _name(f"{center_name} Root CA (dev)")
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365 * 30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKey(cert, key)


def _leaf(issuer: CertKey, cn: str, key: PrivateKey, *, tsa: bool) -> CertKey:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    b = (
        x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=365 * 20))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False  # type: ignore[arg-type]
        )
    )
    if tsa:
        b = b.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    else:
        b = b.add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
    return CertKey(b.sign(issuer.key, hashes.SHA256()), key)


def _load(d: Path, name: str) -> CertKey | None:
    cert_path, key_path = d / f"{name}.pem", d / f"{name}.key.pem"
    if not (cert_path.exists() and key_path.exists()):
        return None
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return CertKey(cert, key)


def _save(d: Path, name: str, ck: CertKey) -> None:
    write_secret(
        d / f"{name}.key.pem",
        ck.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    (d / f"{name}.pem").write_bytes(ck.cert_pem)
