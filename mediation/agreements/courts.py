"""The court directory and the CPL 205 / R22 venue rules.

A directory is a list of courts loadable from JSON (`[{...}]` or `{"courts": [...]}`) or TOML (`[[court]]`):

    id, name, level ("basic" | "intermediate" | "high"), region (the place name matched against addresses,
    e.g. "湟中区"), address, ruling_public_key (base64 raw Ed25519, 32 bytes), recording_public_key (base64 raw
    X25519, 32 bytes: recordings' data keys are wrapped to it).

Development courts (`load_or_create_dev`) keep their private keys under `<key_dir>/courts/` (0600) so the dev
judge can sign rulings and `onedoor verify --court-key` can unwrap recordings; real courts keep theirs.
"""

from __future__ import annotations

import base64
import json
import logging
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from mediation.canonical import sha256_hex
from mediation.errors import Forbidden, InvalidInput, NotFound
from mediation.keyring import write_secret

log = logging.getLogger(__name__)
LEVELS = ("basic", "intermediate", "high")

DEV_COURTS = (
    ("court-huangzhong", "西宁市湟中区人民法院", "basic", "湟中区", "青海省西宁市湟中区鲁沙尔镇"),
    ("court-chengdong", "西宁市城东区人民法院", "basic", "城东区", "青海省西宁市城东区"),
    ("court-chengzhong", "西宁市城中区人民法院", "basic", "城中区", "青海省西宁市城中区"),
    ("court-xining", "西宁市中级人民法院", "intermediate", "西宁市", "青海省西宁市城西区"),
)


@dataclass(frozen=True)
class Court:
    id: str
    name: str
    level: str
    region: str
    address: str
    ruling_public_key: str
    recording_public_key: str

    @property
    def ruling_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(self.ruling_public_key))

    @property
    def ruling_key_fingerprint(self) -> str:
        return sha256_hex(base64.b64decode(self.ruling_public_key))

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class CourtSuggestion:
    court_id: str
    name: str
    reasons: list[str] = field(default_factory=list)


def _court(d: dict[str, Any]) -> Court:
    try:
        c = Court(**{k: str(d[k]) for k in Court.__dataclass_fields__})
        Ed25519PublicKey.from_public_bytes(base64.b64decode(c.ruling_public_key))
        if len(base64.b64decode(c.recording_public_key)) != 32:
            raise ValueError("recording_public_key must be 32 bytes")
    except (KeyError, ValueError) as e:
        raise InvalidInput(f"court directory entry invalid: {e}", code="invalid_court", entry=d.get("id")) from e
    if c.level not in LEVELS:
        raise InvalidInput(f"court {c.id}: level must be one of {LEVELS}", code="invalid_court")
    return c


class CourtDirectory:
    def __init__(self, courts: list[Court], key_dir: Path | None = None) -> None:
        self.courts = {c.id: c for c in courts}
        self.key_dir = key_dir

    @classmethod
    def from_file(cls, path: Path, key_dir: Path | None = None) -> CourtDirectory:
        if path.suffix == ".toml":
            entries = tomllib.loads(path.read_text("utf-8")).get("court", [])
        else:
            doc = json.loads(path.read_text("utf-8"))
            entries = doc["courts"] if isinstance(doc, dict) else doc
        return cls([_court(e) for e in entries], key_dir)

    @classmethod
    def load_or_create_dev(cls, key_dir: Path) -> CourtDirectory:
        d = key_dir / "courts"
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o700)
        listing = d / "courts.json"
        if listing.exists():
            return cls.from_file(listing, key_dir)
        courts = []
        for cid, name, level, region, address in DEV_COURTS:
            rk, wk = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
            for suffix, key in (("ruling", rk), ("wrap", wk)):
                write_secret(d / f"{cid}-{suffix}.pem", key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
            courts.append(Court(cid, name, level, region, address,
                                base64.b64encode(rk.public_key().public_bytes(*raw)).decode(),
                                base64.b64encode(wk.public_key().public_bytes(*raw)).decode()))
        listing.write_text(json.dumps({"courts": [c.to_dict() for c in courts]}, ensure_ascii=False, indent=1))
        log.info("generated %d development courts in %s", len(courts), d)
        return cls(courts, key_dir)

    def get(self, court_id: str) -> Court:
        if court_id not in self.courts:
            raise NotFound(f"法院目录中没有该法院 / no court '{court_id}' in the directory", code="no_court")
        return self.courts[court_id]

    def _private(self, court_id: str, suffix: str) -> Any:
        path = self.key_dir / "courts" / f"{court_id}-{suffix}.pem" if self.key_dir else None
        if path is None or not path.exists():
            raise Forbidden(f"no {suffix} key for court {court_id} on this server", code="no_court_key")
        return serialization.load_pem_private_key(path.read_bytes(), password=None)

    def ruling_key(self, court_id: str) -> Ed25519PrivateKey:
        key = self._private(court_id, "ruling")
        assert isinstance(key, Ed25519PrivateKey)
        return key

    def recording_key(self, court_id: str) -> X25519PrivateKey:
        key = self._private(court_id, "wrap")
        assert isinstance(key, X25519PrivateKey)
        return key


def suggest_courts(
    directory: CourtDirectory, *, referring_court_id: str | None, party_addresses: list[str],
    property_location: str = "", center_address: str = "",
) -> list[CourtSuggestion]:
    """R22 (CPL 205; CPL-I 352; JC 2): the inviting court for court-referred mediation (诉调); otherwise a
    basic-level court where a party lives, where the disputed property is, or where the organization sits."""
    if referring_court_id:
        c = directory.get(referring_court_id)
        return [CourtSuggestion(c.id, c.name, ["委派调解的人民法院 / the court that referred the mediation"])]
    out = []
    for c in directory.courts.values():
        if c.level != "basic":
            continue
        reasons = []
        if any(c.region and c.region in a for a in party_addresses):
            reasons.append("当事人住所地 / where a party lives")
        if property_location and c.region and c.region in property_location:
            reasons.append("标的物所在地 / where the disputed property is")
        if center_address and c.region and c.region in center_address:
            reasons.append("调解组织所在地 / where the mediation organization sits")
        if reasons:
            out.append(CourtSuggestion(c.id, c.name, reasons))
    return sorted(out, key=lambda x: (-len(x.reasons), x.court_id))
