"""R16, R17: signatures by the bound device keys, effect at the last party signature with an RFC 3161 timestamp,
refusals, personal-status matters, and the sealed PDF (PAdES, validated by pyHanko, Chinese text extractable)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from datetime import timedelta

import pypdf
import pytest
from sqlalchemy import update

from mediation.agreements import agreement, payloads, pki, seal, signing, tsa
from mediation.agreements.models import AgreementVersion
from mediation.audit import entries_for
from mediation.db import Database, utcnow
from mediation.errors import Conflict, Forbidden, IntegrityError, InvalidInput
from mediation.models import Case

from .conftest import Device, World, make_world
from .helpers import filled_content, final_agreement, party_sign, sealed_agreement


def test_p1363_signature_converts_and_verifies() -> None:
    dev = Device()
    msg = payloads.payload_bytes(case_code="C", agreement_id=1, version=2, content_sha256="a" * 64,
                                 pdf_sha256="b" * 64, signer="person:1", role="party")
    sig = base64.b64decode(dev.sign(msg))
    assert len(sig) == 64
    spki = base64.b64decode(dev.spki_b64)
    assert payloads.verify_signature(payloads.ECDSA_P256, spki, sig, msg)
    assert not payloads.verify_signature(payloads.ECDSA_P256, spki, sig, msg + b" ")
    assert not payloads.verify_signature(payloads.ECDSA_P256, spki, sig[:63], msg)
    assert msg.startswith(b'{"agreement_id":1,"case":"C"')


async def test_payload_is_canonical_and_pins_content_and_pdf(world: World) -> None:
    a = await final_agreement(world)
    async with world.db.session() as s:
        raw = await signing.signing_payload(s, a.id, person_id=world.people["A"])
        pdf = await agreement.agreement_pdf(s, a.id, viewer=f"person:{world.people['A']}")
        reads = [e for e in await entries_for(s, f"case:{world.case_code}") if e.action == "agreement.read"]
    assert payloads.sha256_hex(pdf) == a.pdf_sha256 and len(reads) == 1
    doc = json.loads(raw)
    assert doc == {"type": "onedoor-agreement-signature", "case": world.case_code, "agreement_id": a.id,
                   "version": a.final_version, "content_sha256": a.content_sha256, "pdf_sha256": a.pdf_sha256,
                   "signer": f"person:{world.people['A']}", "role": "party"}
    assert raw == payloads.canonical_json(doc)


async def test_signature_by_another_key_is_refused(world: World) -> None:
    a = await final_agreement(world)
    async with world.db.session() as s:
        payload = await signing.signing_payload(s, a.id, person_id=world.people["A"])
        for forged in (Device().sign(payload), world.devices["B"].sign(payload)):
            with pytest.raises(InvalidInput) as e:
                await signing.sign_as_party(s, a.id, person_id=world.people["A"], invite_id=world.invites["A"],
                                            signature_b64=forged, notary=world.notary)
            assert e.value.code == "bad_signature"
        # the right key over other bytes (e.g. a draft) is refused too
        with pytest.raises(InvalidInput):
            await signing.sign_as_party(s, a.id, person_id=world.people["A"], invite_id=world.invites["A"],
                                        signature_b64=world.devices["A"].sign(payload + b"x"), notary=world.notary)
        # and someone else's invite cannot lend its key
        with pytest.raises(Forbidden) as e2:
            await signing.sign_as_party(s, a.id, person_id=world.people["A"], invite_id=world.invites["B"],
                                        signature_b64=world.devices["B"].sign(payload), notary=world.notary)
        assert e2.value.code == "invite_mismatch"
        assert (await agreement.get_agreement(s, a.id)).signatures == []


async def test_draft_cannot_be_signed(world: World) -> None:
    async with world.db.session() as s:
        d = await agreement.create_draft(s, world.case_id, template="wages", author="staff:1")
        with pytest.raises(Conflict) as e:
            await signing.signing_payload(s, d.id, person_id=world.people["A"])
    assert e.value.code == "not_final"


async def test_last_party_signature_makes_it_effective_with_a_timestamp(world: World) -> None:
    a = await final_agreement(world)
    first = await party_sign(world, a.id, "A")
    assert not first.effective and first.agreement.unsigned_parties == [world.people["B"]]
    last = await party_sign(world, a.id, "B-agent")  # the agent signs for party B
    assert last.effective and not last.sealed  # the mediator has not signed yet
    view = last.agreement
    assert view.status == "effective" and view.effective_at == last.signature.signed_at
    async with world.db.session() as s:
        from mediation.agreements._load import agreement_row

        row = await agreement_row(s, a.id)
        assert row.effect_record and row.effect_token
        when = await tsa.check_token(row.effect_token, row.effect_record.encode(), world.notary.tsa.roots)
        # the token was issued for this signature: not before it (genTime may be truncated to the second), not
        # in the future (a sequence, not a bound on how long signing took)
        assert view.effective_at - timedelta(seconds=1) <= when <= utcnow()
        with pytest.raises(IntegrityError):
            await tsa.check_token(row.effect_token, row.effect_record.encode() + b" ", world.notary.tsa.roots)
        assert (await s.get(Case, world.case_id)).termination_reason == "agreement_reached"  # type: ignore[union-attr]
        actions = [e.action for e in await entries_for(s, f"case:{world.case_code}")]
    assert actions[-3:] == ["agreement.sign", "agreement.sign", "agreement.effective"]


async def test_edited_after_signing_fails(world: World) -> None:
    a = await final_agreement(world)
    await party_sign(world, a.id, "A")
    await party_sign(world, a.id, "B")
    async with world.db.session() as s:
        c = dict(a.content, facts="篡改后的事实")
        await s.execute(update(AgreementVersion).where(AgreementVersion.agreement_id == a.id,
                                                       AgreementVersion.version == a.final_version)
                        .values(content=payloads.canonical_json(c).decode()))
        problems = await signing.verify_signatures(s, a.id)
        assert "final content changed after finalization" in problems
        await signing.sign_as_mediator(s, a.id, staff_id=world.mediator_id, notary=world.notary, auto_seal=False)
        with pytest.raises(IntegrityError) as e:
            await seal.seal_agreement(s, a.id, notary=world.notary)
    assert e.value.code == "signature_invalid"


async def test_refusal_ends_the_mediation(world: World) -> None:
    a = await final_agreement(world)
    async with world.db.session() as s:
        view = await signing.refuse_to_sign(s, a.id, person_id=world.people["B"], note="不同意付款期限")
        case = await s.get(Case, world.case_id)
        assert view.status == "refused"
        assert case is not None and case.termination_reason == "party_refused_to_sign"
        with pytest.raises(Conflict):
            await signing.signing_payload(s, a.id, person_id=world.people["A"])


async def test_personal_status_matters_are_paper_only(db: Database, notary, courts) -> None:  # type: ignore[no-untyped-def]
    w = await make_world(db, notary, courts, personal_status=True)
    async with db.session() as s:
        d = await agreement.create_draft(s, w.case_id, template="family_maintenance", author="staff:1")
        await agreement.update_draft(s, d.id, filled_content(d, w), author="staff:1")
        a = await agreement.finalize(s, d.id, author="staff:1", notary=notary)  # drafting and printing are fine
        with pytest.raises(Forbidden) as e:
            await signing.signing_payload(s, a.id, person_id=w.people["A"])
    assert e.value.code == "personal_status_paper_only" and "电子签名法" in e.value.message


async def test_sealed_pdf_validates_and_carries_the_chinese_text_and_signatures(world: World) -> None:
    view = await sealed_agreement(world)
    assert view.status == "sealed" and view.mediator_signed
    async with world.db.session() as s:
        from mediation.agreements._load import agreement_row

        row = await agreement_row(s, view.id)
    assert row.sealed_pdf is not None and row.unsigned_pdf is not None
    roots = [world.notary.pki.root.cert_der]
    st = await seal.validate_seal(row.sealed_pdf, roots, world.notary.tsa.roots)
    assert st.ok, st.summary
    assert st.pades_level == "B-LT" and st.timestamp
    reader = pypdf.PdfReader(io.BytesIO(row.sealed_pdf))
    text = await asyncio.to_thread(lambda: "".join(p.extract_text() for p in reader.pages))  # CPU: off the loop
    for needle in ("人民调解协议书", "张三", "西宁某建筑劳务有限公司", "18600.00", world.case_code, "电子签名记录",
                   world.notary.keyring.fingerprint):
        assert needle in text.replace("\n", ""), needle
    for sig in view.signatures:
        assert sig.key_fingerprint[:16] in text.replace("\n", "")
    # one wording for the sides (甲方/乙方) in everything the PDF itself writes
    flat = text.replace("\n", "")
    for needle in ("甲方当事人", "乙方", "甲方：", "乙方：", "当事人（甲方）"):
        assert needle in flat, needle
    for label in ("A方当事人", "B方当事人", "A方委托", "B方委托", "（A方）", "（B方）"):
        assert label not in flat, label
    attached = reader.attachments
    assert attached["agreement-unsigned.pdf"][0] == row.unsigned_pdf
    sigs = json.loads(attached["signatures.json"][0])
    assert {x["role"] for x in sigs} == {"party", "agent", "mediator"}
    # an untrusted root, or one changed byte, fails
    other = pki._root("另一个中心").cert_der
    assert not (await seal.validate_seal(row.sealed_pdf, [other], world.notary.tsa.roots)).ok
    i = row.sealed_pdf.index(b"18600") if b"18600" in row.sealed_pdf else len(row.sealed_pdf) // 3
    tampered = bytearray(row.sealed_pdf)
    tampered[i] ^= 0x01
    assert not (await seal.validate_seal(bytes(tampered), roots, world.notary.tsa.roots)).ok


async def test_unreachable_external_tsa_fails_cleanly_and_changes_nothing(world: World, no_network: None) -> None:
    from mediation.agreements.notary import Notary
    from mediation.agreements.tsa import TimestampAuthority, TimestampUnavailable

    n = world.notary
    external = Notary(n.settings, n.keyring, n.pki, TimestampAuthority.external("http://127.0.0.1:9/tsa", n.tsa.roots))
    a = await final_agreement(world)
    await party_sign(world, a.id, "A")
    world.notary = external
    with pytest.raises(TimestampUnavailable) as e:
        await party_sign(world, a.id, "B")
    assert e.value.status == 503 and e.value.code == "tsa_unavailable"
    async with world.db.session() as s:
        view = await agreement.get_agreement(s, a.id)
    assert view.status == "final" and [x.role for x in view.signatures] == ["party"]  # rolled back, retry later
