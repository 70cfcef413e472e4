"""The court directory and the CPL 205 / R22 venue rules.

A directory is a list of courts loadable from JSON (`[{...}]` or `{"courts": [...]}`) or TOML (`[[court]]`):

    id, name, level ("basic" | "intermediate" | "high"), region (the place name matched against addresses,
    e.g. "湟中区"), address, ruling_public_key (base64 raw Ed25519, 32 bytes), recording_public_key (base64 raw
    X25519, 32 bytes: recordings' data keys are wrapped to it).

Development courts (`load_or_create_dev`) keep their private keys under `<key_dir>/courts/` (0600) so the dev
judge can sign rulings and `onedoor verify --court-key` can unwrap recordings; real courts keep theirs.

The directory is backed by the `courts` table (issue 10 item 1): at start-up the file's courts are upserted into it
(`seed`: the file wins for the courts it lists), and the directory then holds every row. The system administrator
creates courts through the API (mediation.tenancy), which adds them to the rows and to this node's directory at
once; another node learns of a court when a lookup misses (`lookup` reloads the rows), or at `refresh`.
`get` and `.courts` answer from what was last loaded.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.canonical import sha256_hex
from mediation.errors import Forbidden, InvalidInput, NotFound
from mediation.keyring import write_secret
from mediation.models import CourtRecord

log = logging.getLogger(__name__)
LEVELS = ("basic", "intermediate", "high")
# what the `courts` table holds (mediation.models.CourtRecord): longer values are refused, not truncated
LIMITS = {"id": 50, "name": 200, "level": 20, "region": 100, "address": 300, "ruling_public_key": 100,
          "recording_public_key": 100}
ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")

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


def parse_court(d: dict[str, Any]) -> Court:
    """One directory entry (from the file or the API), checked: every field present, the id made of ASCII letters,
    digits and `-_.`, the level one of LEVELS, a 32-byte Ed25519 ruling key and a 32-byte X25519 recording key (in
    base64). Anything else is 422 `invalid_court`."""
    entry = str(d.get("id", ""))[:60]
    try:
        c = Court(**{k: str(d[k]) for k in Court.__dataclass_fields__})
        for k, limit in LIMITS.items():
            if len(getattr(c, k)) > limit:
                raise ValueError(f"{k} longer than {limit} characters")
        if not c.id or not set(c.id) <= ID_CHARS:
            raise ValueError("id is ASCII letters, digits, '-', '_' or '.'")
        if not c.name.strip():
            raise ValueError("name is empty")
        Ed25519PublicKey.from_public_bytes(base64.b64decode(c.ruling_public_key, validate=True))
        if len(base64.b64decode(c.recording_public_key, validate=True)) != 32:
            raise ValueError("recording_public_key must be 32 bytes")
    except (KeyError, ValueError, TypeError) as e:
        raise InvalidInput(f"court directory entry invalid: {e}", code="invalid_court", entry=entry) from e
    if c.level not in LEVELS:
        raise InvalidInput(f"court {c.id}: level must be one of {LEVELS}", code="invalid_court", entry=entry)
    return c


def court_of(row: CourtRecord) -> Court:
    return Court(row.id, row.name, row.level, row.region, row.address, row.ruling_public_key,
                 row.recording_public_key)


class CourtDirectory:
    def __init__(self, courts: list[Court], key_dir: Path | None = None) -> None:
        self.courts = {c.id: c for c in courts}
        self.key_dir = key_dir
        self.loaded_at = float("-inf")  # time.monotonic() of the last load from the table

    @classmethod
    def from_file(cls, path: Path, key_dir: Path | None = None) -> CourtDirectory:
        if path.suffix == ".toml":
            entries = tomllib.loads(path.read_text("utf-8")).get("court", [])
        else:
            doc = json.loads(path.read_text("utf-8"))
            entries = doc["courts"] if isinstance(doc, dict) else doc
        return cls([parse_court(e) for e in entries], key_dir)

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
        """From the rows last loaded; `lookup` is the same with a reload when the court is not (yet) known here."""
        if court_id not in self.courts:
            raise NotFound(f"法院目录中没有该法院 / no court '{court_id}' in the directory", code="no_court")
        return self.courts[court_id]

    async def lookup(self, s: AsyncSession, court_id: str) -> Court:
        """A court by id; a miss reloads the rows first (a court created on another node since the last load)."""
        if court_id not in self.courts:
            await self.refresh(s)
        return self.get(court_id)

    async def refresh(self, s: AsyncSession) -> None:
        """Hold every row of the `courts` table, over what was loaded before (courts are never deleted); the
        mapping is replaced at once, so a reader sees the old one or the new one."""
        rows = (await s.scalars(select(CourtRecord).order_by(CourtRecord.id))).all()
        self.courts = {**self.courts, **{r.id: court_of(r) for r in rows}}
        self.loaded_at = time.monotonic()

    async def fresh(self, s: AsyncSession, max_age: float = 60.0) -> None:
        """Reload the rows if the last load is older than `max_age` seconds (venue suggestions list every court, so
        a miss cannot tell them of a court created on another node)."""
        if time.monotonic() - self.loaded_at > max_age:
            await self.refresh(s)

    async def seed(self, s: AsyncSession) -> int:
        """Upsert the courts this directory was loaded with (the file, or the development courts) into the table,
        then hold every row. Safe when several nodes start at once (INSERT .. ON CONFLICT DO UPDATE)."""
        insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
        for c in self.courts.values():
            values = c.to_dict()
            stmt = insert(CourtRecord).values(**values)
            await s.execute(stmt.on_conflict_do_update(index_elements=[CourtRecord.id],
                                                       set_={k: v for k, v in values.items() if k != "id"}))
        n = len(self.courts)
        await self.refresh(s)
        return n

    def add(self, court: Court) -> None:
        """This node holds a court just created (the row is committed by the caller)."""
        self.courts = {**self.courts, court.id: court}

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
