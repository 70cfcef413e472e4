"""Fixtures for the agreement domain: a SQLite database, real keys, and a case with two parties and an agent.

Party device keys are made the way a browser's WebCrypto does: ECDSA P-256, public key exported as SPKI DER,
signatures returned as raw r||s (IEEE P1363, 64 bytes).
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

import mediation.agreements.models
import mediation.audit
import mediation.models  # noqa: F401
from mediation.agreements.courts import CourtDirectory
from mediation.agreements.notary import AgreementSettings, Notary
from mediation.db import Base, Database, utcnow
from mediation.keyring import KeyRing
from mediation.models import Case, Center, Invite, MediationSession, Person, StaffUser


class Device:
    """A browser's non-extractable WebCrypto ECDSA P-256 key."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())

    @property
    def spki_b64(self) -> str:
        der = self._key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def sign(self, message: bytes) -> str:
        r, s = decode_dss_signature(self._key.sign(message, ec.ECDSA(hashes.SHA256())))
        return base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()


@dataclass
class World:
    db: Database
    notary: Notary
    courts: CourtDirectory
    case_id: int = 0
    case_code: str = ""
    mediator_id: int = 0
    judge_id: int = 0
    other_judge_id: int = 0
    people: dict[str, int] = field(default_factory=dict)  # "A", "B", "A-agent" -> person id
    invites: dict[str, int] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def notary(key_dir: Path) -> Notary:
    settings = AgreementSettings(key_dir=key_dir, base_url="https://onedoor.example.cn", center_name="湟中区综治中心")
    return Notary.load(settings, KeyRing.load_or_create(key_dir))


@pytest.fixture(scope="session")
def courts(key_dir: Path) -> CourtDirectory:
    return CourtDirectory.load_or_create_dev(key_dir)


async def make_world(db: Database, notary: Notary, courts: CourtDirectory, *, personal_status: bool = False,
                     referring_court: str | None = None, with_agent: bool = True) -> World:
    w = World(db=db, notary=notary, courts=courts)
    async with db.session() as s:
        center = Center(code="QH-HX", name="湟中区矛盾纠纷调处化解中心", address="青海省西宁市湟中区鲁沙尔镇团结路1号")
        s.add(center)
        await s.flush()
        mediator = StaffUser(center_id=center.id, username="med", display_name="王调解", role="mediator",
                             password_hash="x")
        judge = StaffUser(center_id=center.id, username="judge", display_name="赵法官", role="court_judge",
                          password_hash="x", court_id="court-huangzhong")
        other = StaffUser(center_id=center.id, username="judge2", display_name="钱法官", role="court_judge",
                          password_hash="x", court_id="court-chengdong")
        s.add_all([mediator, judge, other])
        await s.flush()
        case = Case(center_id=center.id, code="QH-HX-2026-000123", title="拖欠工资", category="wages",
                    channel="walk_in", stage="处置", mediator_id=mediator.id, personal_status=personal_status,
                    referring_court_id=referring_court)
        s.add(case)
        await s.flush()
        a = Person(case_id=case.id, side="A", kind="party", name="张三", id_number="630121199001011234",
                   phone="13800000001", address="青海省西宁市湟中区鲁沙尔镇和平村12号")
        b = Person(case_id=case.id, side="B", kind="party", name="西宁某建筑劳务有限公司", id_number="91630100MA000000X1",
                   phone="0971-1234567", address="青海省西宁市城东区八一路8号")
        s.add_all([a, b])
        await s.flush()
        ppl = {"A": a, "B": b}
        if with_agent:
            ag = Person(case_id=case.id, side="B", kind="agent", represents_id=b.id, name="李律师",
                        id_number="630102198501011111", phone="13900000002", address="青海省西宁市城中区")
            s.add(ag)
            ppl["B-agent"] = ag
        sess = MediationSession(case_id=case.id, host_id=mediator.id, state="live", scheduled_at=utcnow())
        s.add(sess)
        await s.flush()
        for key, p in ppl.items():
            dev = Device()
            inv = Invite(session_id=sess.id, person_id=p.id, role=p.kind, token_hash=f"{key}-{p.id}".ljust(64, "0"),
                         expires_at=utcnow() + dt.timedelta(days=1), device_key=dev.spki_b64, bound_at=utcnow())
            s.add(inv)
            await s.flush()
            w.people[key], w.invites[key], w.devices[key] = p.id, inv.id, dev
        w.case_id, w.case_code, w.mediator_id = case.id, case.code, mediator.id
        w.judge_id, w.other_judge_id = judge.id, other.id
    return w


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Block the network (not our code): any connect or name lookup fails."""

    def refuse(*_a: object, **_k: object) -> None:
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield database
    await database.close()


@pytest.fixture
async def world(db: Database, notary: Notary, courts: CourtDirectory) -> World:
    return await make_world(db, notary, courts)
