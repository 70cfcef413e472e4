"""Check-then-write races, tried the way an attacker (or a crowd) would: many attempts at the same moment, and
exactly one wins (issue 10 item 4). Each runs on SQLite and, with ONEDOOR_TEST_DATABASE_URL, on PostgreSQL.

- First-use binding of an invite: 60 devices (real Socket.IO clients) open one unbound link at once.
- A spent join challenge, replayed against a new app over the same data directory (a restart, another node).
- Consents (one row per invite, kind and subject), OTP attempts (never more than MAX_ATTEMPTS counted),
  agreement and application signatures (one per signer; the last of two signers makes it effective / submits),
  case codes (a counter, never a count).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mediation import counters
from mediation.agreements import confirmation, signing
from mediation.agreements.models import AgreementSignature, ApplicationSignature
from mediation.agreements.notary import AgreementSettings, Notary
from mediation.audit import AuditEntry
from mediation.db import Database, utcnow
from mediation.devicekeys import join_message
from mediation.errors import Conflict, RateLimited
from mediation.identity import MAX_ATTEMPTS, OtpVerifier
from mediation.keyring import KeyRing
from mediation.models import Consent, IdentityCheck, Invite
from signaling.app import create_app
from signaling.client import ProtocolError, SessionClient
from signaling.config import Settings
from tests.agreements.conftest import World as AgreementWorld
from tests.agreements.conftest import make_world
from tests.agreements.helpers import attach_power_of_attorney, final_agreement, party_sign, sealed_agreement
from tests.conftest import World

N_DEVICES = 60


async def _count(db: Database, q: Any) -> int:
    async with db.session() as s:
        return int(await s.scalar(q) or 0)


@pytest.mark.timeout(90)
async def test_sixty_devices_open_one_unbound_invite_at_once_exactly_one_is_bound(world: World) -> None:
    token, invite_id = world.tokens["A"], world.invite_ids["A"]
    clients = [world.client() for _ in range(N_DEVICES)]
    for c in clients:  # sixty device proofs checked one after another on a busy machine: give them time
        c.connect_wait = 60.0
    # every device fetches its challenge first, then all present their proofs at the same moment
    auths = []
    for c in clients:
        async with c.http.post(f"{world.base_url}/api/join", json={"token": token}) as r:
            ch = (await r.json())["challenge"]
        auths.append({"invite": token, "challenge": ch, "signature": c.device_key.sign(join_message(ch)),
                      "public_key": c.device_key.spki_b64})
    results = await asyncio.gather(*(c._connect(a) for c, a in zip(clients, auths, strict=True)),
                                   return_exceptions=True)
    winners = [c for c, r in zip(clients, results, strict=True) if r is None]
    codes = sorted({str(r.code) for r in results if isinstance(r, ProtocolError)})
    print(f"\nfirst-use binding: {N_DEVICES} concurrent devices, {len(winners)} bound and connected, "
          f"losers: {codes}")
    assert len(winners) == 1, (len(winners), codes)
    assert codes == ["device_mismatch"]
    assert not any(isinstance(r, BaseException) and not isinstance(r, ProtocolError) for r in results)
    db = world.services.db
    async with db.session() as s:
        inv = await s.get(Invite, invite_id)
        assert inv is not None and inv.device_key == winners[0].device_key.spki_b64
        binds = await s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "invite.bind", AuditEntry.subject == f"invite:{invite_id}"))
        refused = await s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "invite.device_mismatch", AuditEntry.subject == f"invite:{invite_id}"))
    assert binds == 1
    assert refused == N_DEVICES - 1  # every refused device is on record although its request was rolled back
    # the winner is in the lobby, as the only person of that invite
    await winners[0].wait(lambda c: c.state.get("you", {}).get("admitted") is False)
    room = world.services.live.get(world.session_id)
    assert room is not None
    assert [p.pid for p in room.people.values() if p.invite_id == invite_id and p.connected] == [f"inv-{invite_id}"]
    assert all(not c.sio.connected for c in clients if c is not winners[0])


@pytest.mark.timeout(60)
async def test_a_join_replayed_after_a_restart_is_refused_challenge_used(
    world: World, aiohttp_server: Any, settings: Settings
) -> None:
    a = world.client()
    token = world.tokens["A"]
    async with a.http.post(f"{world.base_url}/api/join", json={"token": token}) as r:
        ch = (await r.json())["challenge"]
    captured = {"invite": token, "challenge": ch, "signature": a.device_key.sign(join_message(ch)),
                "public_key": a.device_key.spki_b64}
    await a._connect(dict(captured))
    await a.close()
    # same server: refused
    with pytest.raises(ProtocolError) as e:
        await world.client()._connect(dict(captured))
    assert e.value.code == "challenge_used"
    # a new app over the same data directory (what a restart, or a second node, is): still refused
    server2 = await aiohttp_server(create_app(settings))
    again = SessionClient(str(server2.make_url("")).rstrip("/"))
    world.clients.append(again)
    with pytest.raises(ProtocolError) as e:
        await again._connect(dict(captured))
    assert e.value.code == "challenge_used"
    # and a fresh challenge from the new server works for the bound device
    async with again.http.post(f"{again.base_url}/api/join", json={"token": token}) as r:
        ch2 = (await r.json())["challenge"]
    again.device_key = a.device_key
    await again._connect({"invite": token, "challenge": ch2, "signature": a.device_key.sign(join_message(ch2))})
    assert again.sio.connected


@pytest.mark.timeout(60)
async def test_spent_challenges_are_pruned_once_expired(world: World) -> None:
    from mediation import sessions
    from mediation.models import SpentChallenge

    db = world.services.db
    async with db.session() as s:
        assert await sessions.spend_challenge(s, "old", utcnow() - dt.timedelta(seconds=1))
        assert await sessions.spend_challenge(s, "new", utcnow() + dt.timedelta(seconds=60))
    async with db.session() as s:
        assert not await sessions.spend_challenge(s, "new", utcnow() + dt.timedelta(seconds=60))
        assert await sessions.spend_challenge(s, "other", utcnow() + dt.timedelta(seconds=60))
        left = set((await s.scalars(select(SpentChallenge.challenge_hash))).all())
    assert left == {sessions.hash_token("new"), sessions.hash_token("other")}


@pytest.mark.timeout(60)
async def test_concurrent_consents_leave_one_row(world: World) -> None:
    a = await world.party("A")
    acks = await asyncio.gather(*(a.call("lobby:consent", {"kind": "recording", "granted": i % 2 == 0})
                                  for i in range(20)), return_exceptions=True)
    assert all(isinstance(x, dict) and x.get("ok") for x in acks), acks
    n = await _count(world.services.db, select(func.count()).select_from(Consent).where(
        Consent.invite_id == world.invite_ids["A"], Consent.kind == "recording"))
    assert n == 1


@pytest.mark.timeout(60)
async def test_concurrent_otp_answers_count_every_attempt(world: World) -> None:
    db, inv_id = world.services.db, world.invite_ids["A"]
    otp = world.services.verifiers["otp"]
    assert isinstance(otp, OtpVerifier)
    async with db.session() as s:
        inv = await s.get(Invite, inv_id)
        assert inv is not None
        await otp.start(s, inv, phone="13800000001", actor="test")
    right = world.codes[f"invite:{inv_id}"]
    wrong = "000000" if right != "000000" else "111111"

    async def answer(code: str) -> bool | str:
        try:
            async with db.session() as s:
                inv = await s.get(Invite, inv_id)
                assert inv is not None
                return await otp.answer(s, inv, {"code": code}, actor="attacker")
        except RateLimited as e:
            return e.code

    n = 20
    out = await asyncio.gather(*(answer(wrong) for _ in range(n)))
    print(f"\nOTP: {n} concurrent wrong answers, {out.count(False)} counted as attempts, "
          f"{out.count('too_many_attempts')} refused")
    assert out.count(False) == MAX_ATTEMPTS and out.count("too_many_attempts") == n - MAX_ATTEMPTS
    assert await answer(right) == "too_many_attempts"  # the right code no longer helps
    async with db.session() as s:
        check = await s.scalar(select(IdentityCheck).where(IdentityCheck.invite_id == inv_id))
        failed = await s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "identity.failed", AuditEntry.subject == f"invite:{inv_id}"))
    assert check is not None and check.state != "passed" and check.attempts == MAX_ATTEMPTS
    assert failed == n - MAX_ATTEMPTS + 1  # every refused answer is on record, though its transaction rolled back


# ---- agreements and applications -------------------------------------------------------------------------------

@pytest.fixture
async def signing_world(db_url: str, tmp_path: Path) -> Any:
    db = Database(db_url)
    key_dir = tmp_path / "agreement-keys"
    notary = Notary.load(AgreementSettings(key_dir=key_dir, base_url="https://onedoor.example.cn",
                                           center_name="湟中区综治中心"), KeyRing.load_or_create(key_dir))
    from mediation.agreements.courts import CourtDirectory

    w = await make_world(db, notary, CourtDirectory.load_or_create_dev(key_dir))
    yield w
    await db.close()


async def _sign(w: AgreementWorld, agreement_id: int, who: str) -> str:
    try:
        await party_sign(w, agreement_id, who, auto_seal=False)
        return "ok"
    except Conflict as e:
        return e.code


@pytest.mark.timeout(60)
async def test_one_party_signing_ten_times_at_once_leaves_one_signature(signing_world: AgreementWorld) -> None:
    w = signing_world
    a = await final_agreement(w)
    out = await asyncio.gather(*(_sign(w, a.id, "A") for _ in range(10)))
    assert sorted(out) == ["already_signed"] * 9 + ["ok"], out
    n = await _count(w.db, select(func.count()).select_from(AgreementSignature).where(
        AgreementSignature.agreement_id == a.id, AgreementSignature.signer == f"person:{w.people['A']}"))
    assert n == 1


@pytest.mark.timeout(60)
async def test_the_last_two_parties_signing_at_once_make_the_agreement_effective(
    signing_world: AgreementWorld,
) -> None:
    w = signing_world
    a = await final_agreement(w)
    assert await asyncio.gather(_sign(w, a.id, "A"), _sign(w, a.id, "B-agent")) == ["ok", "ok"]
    async with w.db.session() as s:
        view = await signing.get_agreement(s, a.id)
    assert view.status == "effective" and not view.unsigned_parties


async def _apply_sign(w: AgreementWorld, application_id: int, who: str) -> str:
    try:
        async with w.db.session() as s:
            payload = await confirmation.application_payload(s, application_id, person_id=w.people[who])
            await confirmation.sign_application(s, application_id, person_id=w.people[who],
                                                invite_id=w.invites[who], signature_b64=w.devices[who].sign(payload))
        return "ok"
    except Conflict as e:
        return e.code


@pytest.mark.timeout(60)
async def test_application_signatures_one_per_signer_and_the_last_submits(signing_world: AgreementWorld) -> None:
    w = signing_world
    a = await sealed_agreement(w)  # the package needs the sealed agreement to be submitted
    async with w.db.session() as s:
        app = await confirmation.start_application(s, a.id, court_id="court-huangzhong", courts=w.courts,
                                                   actor="staff:1")
    await attach_power_of_attorney(w, app.id)
    out = await asyncio.gather(*(_apply_sign(w, app.id, "A") for _ in range(5)), _apply_sign(w, app.id, "B-agent"))
    # one of A's five signatures is stored; the others are refused (already signed, or already submitted when
    # B-agent's signature, the last one, came in between)
    assert out[:5].count("ok") == 1 and out[5] == "ok", out
    assert set(out[:5]) <= {"ok", "already_signed", "already_submitted"}, out
    n = await _count(w.db, select(func.count()).select_from(ApplicationSignature).where(
        ApplicationSignature.application_id == app.id))
    assert n == 2
    async with w.db.session() as s:
        assert (await confirmation.get_application(s, app.id)).status == "submitted"


@pytest.mark.timeout(60)
async def test_a_counter_never_hands_out_a_number_twice(db_url: str) -> None:
    db = Database(db_url)
    try:
        async def one() -> int:
            async with db.session() as s:
                return await counters.next_value(s, "case:QH-HX-2026-", initial=lambda: asyncio.sleep(0, 7))
        got = await asyncio.gather(*(one() for _ in range(30)))
        assert sorted(got) == list(range(8, 38))
    finally:
        await db.close()



async def test_concurrent_draft_saves_from_one_version_one_wins(world: World) -> None:
    """Two editors save from the same base version at once: one new version, the others 409 stale_version."""
    m = await world.staff("mediator", session=False)
    base = f"/api/cases/{world.case_code}/agreement"
    draft = (await m.api("POST", base, {"template": "neighbours"}))["agreement"]

    async def save(i: int) -> int:
        body = {"content": draft["content"], "base_version": draft["current_version"], "note": f"editor {i}"}
        async with m.http.post(f"{world.base_url}{base}/draft", json=body, headers={"X-CSRF-Token": m.csrf}) as r:
            return r.status

    statuses = sorted(await asyncio.gather(*(save(i) for i in range(8))))
    assert statuses == [200] + [409] * 7, statuses
    assert (await m.api("GET", base))["agreement"]["current_version"] == draft["current_version"] + 1


async def test_cases_opened_at_once_get_distinct_codes(world: World) -> None:
    """一案一码 (R29): ten intakes at the same moment, ten different case codes (the count + 1 rule collided)."""
    clerk = await world.staff("clerk", session=False)
    body = {"title": "并发登记", "category": "neighbours", "channel": "walk_in",
            "people": [{"side": "A", "name": "钱一"}, {"side": "B", "name": "孙二"}]}

    async def intake() -> tuple[int, Any]:
        async with clerk.http.post(f"{world.base_url}/api/cases", json=body,
                                   headers={"X-CSRF-Token": clerk.csrf}) as r:
            return r.status, await r.json()

    results = await asyncio.gather(*(intake() for _ in range(10)))
    assert [st for st, _ in results] == [200] * 10, results
    codes = {out["case"]["code"] for _, out in results}
    assert len(codes) == 10 and world.case_code not in codes


_MAKE_KEYS = """
import sys, hashlib
from pathlib import Path
from mediation.agreements.pki import DevPKI
from mediation.keyring import KeyRing
d = Path(sys.argv[1])
ring, pki = KeyRing.load_or_create(d), DevPKI.load_or_create(d)
print(hashlib.sha256(pki.root.cert_der).hexdigest(), ring.current_master_id, ring.fingerprint)
"""


def test_nodes_starting_on_one_empty_key_dir_agree_on_one_root_and_seal(tmp_path: Path) -> None:
    """Cluster nodes start at once on one key directory: each must end with the same keys and a seal certificate
    that chains to the root on disk (two generators used to race, and the seal failed to validate in CI)."""
    import subprocess
    import sys

    from mediation.agreements.pki import DevPKI

    key_dir = tmp_path / "keys"
    procs = [subprocess.Popen([sys.executable, "-c", _MAKE_KEYS, str(key_dir)], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2]) for _ in range(6)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len({o for o, _ in outs}) == 1, outs  # every process saw the same root, master key and signing key
    pki = DevPKI.load_or_create(key_dir)
    for leaf in (pki.seal, pki.tsa):  # each certificate on disk is signed by the root on disk
        leaf.cert.verify_directly_issued_by(pki.root.cert)
    assert not list(key_dir.rglob("*.tmp"))
