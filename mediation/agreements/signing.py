"""Signing services (R16, R17). The payload format is in `payloads.py`.

- A party or agent signs with the WebCrypto P-256 key bound to their invite at first join; the server only
  verifies (the private key never leaves the browser). Any other key is refused.
- The mediator signs with the server-held mediator key (`Notary.mediator_key`), the organization's attestation.
- The last party signature makes the agreement effective; that moment is timestamped (RFC 3161).
- Personal-status matters (ESL 3) are refused for electronic signing; a refusal to sign ends the mediation (R28).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit, cases
from mediation.agreements import payloads
from mediation.agreements._load import agreement_row, case_row, staff_name
from mediation.agreements.agreement import (
    AgreementView,
    SignatureInfo,
    get_agreement,
    signature_info,
    signature_rows,
    subject,
)
from mediation.agreements.integrity import verify_signatures  # noqa: F401  (callers read it here)
from mediation.agreements.models import Agreement, AgreementSignature
from mediation.agreements.notary import Notary
from mediation.agreements.seal import seal_agreement
from mediation.cases import Termination
from mediation.db import utcnow
from mediation.errors import Conflict, Forbidden, InvalidInput
from mediation.models import Case, Invite, MediationSession, Person

log = logging.getLogger(__name__)
PERSONAL_STATUS_MESSAGE = (
    "本案涉及婚姻、收养、继承等人身关系，依《电子签名法》第三条不适用电子签名：请打印协议书，由各方在调解组织现场"
    "书面签署。/ Marriage, adoption, inheritance and other personal-status matters cannot be signed electronically "
    "(Electronic Signature Law art. 3): print the agreement and sign it on paper at the center."
)


@dataclass
class SignOutcome:
    signature: SignatureInfo
    effective: bool  # all parties have signed
    effective_at: dt.datetime | None
    sealed: bool
    agreement: AgreementView


async def _signable(s: AsyncSession, agreement_id: int) -> tuple[Agreement, Case]:
    a = await agreement_row(s, agreement_id, lock=True)
    case = await case_row(s, a.case_id)
    if await cases.paper_only(s, case):
        raise Forbidden(PERSONAL_STATUS_MESSAGE, code="personal_status_paper_only")
    if a.status == "draft":
        raise Conflict("协议尚未定稿，不能签署 / only the final version can be signed", code="not_final")
    if a.status not in ("final", "effective"):
        raise Conflict(f"协议状态为 {a.status}，不能签署 / the agreement cannot be signed now", code="not_signable")
    return a, case


async def person_of(s: AsyncSession, case: Case, person_id: int) -> Person:
    p = await s.get(Person, person_id)
    if p is None or p.case_id != case.id or p.kind not in ("party", "agent"):
        raise Forbidden("您不是本案当事人或代理人 / not a party or agent of this case", code="not_a_party")
    return p


def _payload(case: Case, a: Agreement, signer: str, role: str) -> bytes:
    assert a.final_version is not None and a.content_sha256 and a.pdf_sha256
    return payloads.payload_bytes(case_code=case.code, agreement_id=a.id, version=a.final_version,
                                  content_sha256=a.content_sha256, pdf_sha256=a.pdf_sha256, signer=signer, role=role)


async def signing_payload(
    s: AsyncSession, agreement_id: int, *, person_id: int | None = None, staff_id: int | None = None
) -> bytes:
    """The exact bytes the browser (person) or the mediator key (staff) signs."""
    a, case = await _signable(s, agreement_id)
    if person_id is not None:
        p = await person_of(s, case, person_id)
        return _payload(case, a, f"person:{p.id}", p.kind)
    if staff_id is not None:
        return _payload(case, a, f"staff:{staff_id}", "mediator")
    raise InvalidInput("person_id or staff_id required", code="missing_field")


async def bound_key(s: AsyncSession, case: Case, person: Person, invite_id: int) -> bytes:
    inv = await s.get(Invite, invite_id)
    sess = await s.get(MediationSession, inv.session_id) if inv else None
    if inv is None or inv.person_id != person.id or sess is None or sess.case_id != case.id:
        raise Forbidden("邀请与签署人不符 / this invite does not belong to the signer", code="invite_mismatch")
    if inv.revoked or not inv.device_key:
        raise Forbidden("此设备未绑定签名密钥 / no device key is bound to this invite", code="no_device_key")
    return base64.b64decode(inv.device_key)


async def _store(s: AsyncSession, a: Agreement, case: Case, row: AgreementSignature) -> None:
    """The unique (agreement, signer) constraint decides: of two concurrent signatures by one signer (SQLite has no
    row lock to serialize them) one row is stored and the other gets `already_signed`, never a 500."""
    s.add(row)
    try:
        await s.flush()
    except IntegrityError:  # the transaction is rolled back with the Conflict
        raise Conflict("已签署 / already signed", code="already_signed") from None
    await audit.append(s, actor=row.signer, action="agreement.sign", subject=subject(case.code, a.id),
                       detail={"role": row.role, "key_fingerprint": row.key_fingerprint,
                               "signature_sha256": payloads.sha256_hex(base64.b64decode(row.signature))})


async def _after_signature(s: AsyncSession, a: Agreement, case: Case, row: AgreementSignature,
                           notary: Notary, auto_seal: bool) -> SignOutcome:
    view = await get_agreement(s, a.id)
    if a.status == "final" and not view.unsigned_parties:
        await _take_effect(s, a, case, notary, row.signed_at)
    sealed = False
    if auto_seal and a.status == "effective" and any(r.role == "mediator" for r in await signature_rows(s, a.id)):
        try:  # sealing writes nothing before it succeeds; a failure leaves the signatures in place to retry
            await seal_agreement(s, a.id, notary=notary)
            sealed = True
        except Exception:
            log.exception("sealing agreement %s failed; it stays effective, retry with seal_agreement", a.id)
    view = await get_agreement(s, a.id)
    return SignOutcome(signature_info(row), a.status in ("effective", "sealed"), a.effective_at, sealed, view)


async def _take_effect(s: AsyncSession, a: Agreement, case: Case, notary: Notary, at: dt.datetime) -> None:
    sigs = [r for r in await signature_rows(s, a.id) if r.role in ("party", "agent")]
    assert a.final_version is not None and a.content_sha256 and a.pdf_sha256
    record = payloads.effect_record(
        case_code=case.code, agreement_id=a.id, version=a.final_version, content_sha256=a.content_sha256,
        pdf_sha256=a.pdf_sha256, effective_at=at.isoformat(timespec="microseconds"),
        signatures=[{"signer": r.signer, "role": r.role, "signature": r.signature} for r in sigs],
    )
    stamp = await notary.tsa.stamp(record)
    a.status, a.effective_at, a.effect_record = "effective", at, record.decode()
    a.effect_token, a.effect_tsa_time = stamp.token, stamp.gen_time
    if case.termination_reason is None:
        case.termination_reason = Termination.AGREEMENT.value
    await s.flush()
    await audit.append(s, actor="system", action="agreement.effective", subject=subject(case.code, a.id),
                       detail={"effective_at": at.isoformat(), "tsa_time": stamp.gen_time.isoformat(),
                               "tsa": notary.tsa.name, "record_sha256": payloads.sha256_hex(record)})


async def sign_as_party(
    s: AsyncSession, agreement_id: int, *, person_id: int, invite_id: int, signature_b64: str, notary: Notary,
    auto_seal: bool = True,
) -> SignOutcome:
    """Verify and store a party's (or agent's) WebCrypto signature over `signing_payload(person_id=...)`.

    `invite_id` is the invite the signer's connection authenticated with; its bound device key is the only key
    accepted. Raises InvalidInput(code="bad_signature") for any other key or a signature over other bytes."""
    a, case = await _signable(s, agreement_id)
    person = await person_of(s, case, person_id)
    signer = f"person:{person.id}"
    if any(r.signer == signer for r in await signature_rows(s, a.id)):
        raise Conflict("您已签署 / already signed", code="already_signed")
    await _not_covered(s, a, person)
    spki = await bound_key(s, case, person, invite_id)
    sig = payloads.decode_b64(signature_b64, "signature")
    if not payloads.verify_signature(payloads.ECDSA_P256, spki, sig, _payload(case, a, signer, person.kind)):
        raise InvalidInput("签名无效：须使用本人绑定设备的密钥对最终版本签署 / signature invalid: it must be made "
                           "by your bound device key over the final version", code="bad_signature").recorded(
            actor=signer, action="agreement.sign_refused", subject=subject(case.code, a.id),
            reason="signature does not verify with the bound device key")
    row = AgreementSignature(
        agreement_id=a.id, version=a.final_version, signer=signer, role=person.kind, person_id=person.id,
        invite_id=invite_id, name=person.name, side=person.side, algorithm=payloads.ECDSA_P256,
        public_key=base64.b64encode(spki).decode(), key_fingerprint=payloads.key_fingerprint(spki),
        signature=base64.b64encode(sig).decode(), signed_at=utcnow(),
    )
    await _store(s, a, case, row)
    return await _after_signature(s, a, case, row, notary, auto_seal)


async def _not_covered(s: AsyncSession, a: Agreement, person: Person) -> None:
    """A party is signed for once, by themselves or by their agent: a second signature for the same party (or a
    refusal after it) is out of turn (issue 11: the workflow model found both accepted)."""
    principal = person.id if person.kind == "party" else person.represents_id
    if principal not in (await get_agreement(s, a.id)).unsigned_parties:
        raise Conflict("已为该当事人签署 / already signed for this party", code="already_signed")


async def sign_as_mediator(
    s: AsyncSession, agreement_id: int, *, staff_id: int, notary: Notary, auto_seal: bool = True
) -> SignOutcome:
    """The case's mediator signs with the server-held mediator key (see notary.py)."""
    a, case = await _signable(s, agreement_id)
    if case.mediator_id != staff_id:
        raise Forbidden("只有本案调解员可以签署 / only this case's mediator signs", code="not_the_mediator")
    signer = f"staff:{staff_id}"
    if any(r.signer == signer for r in await signature_rows(s, a.id)):
        raise Conflict("调解员已签署 / already signed", code="already_signed")
    key = notary.mediator_key(staff_id)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    sig = key.sign(_payload(case, a, signer, "mediator"))
    row = AgreementSignature(
        agreement_id=a.id, version=a.final_version, signer=signer, role="mediator", staff_id=staff_id,
        name=await staff_name(s, staff_id) or "调解员", side="", algorithm=payloads.ED25519,
        public_key=base64.b64encode(spki).decode(), key_fingerprint=payloads.key_fingerprint(spki),
        signature=base64.b64encode(sig).decode(), signed_at=utcnow(),
    )
    await _store(s, a, case, row)
    return await _after_signature(s, a, case, row, notary, auto_seal)


async def refuse_to_sign(
    s: AsyncSession, agreement_id: int, *, person_id: int, note: str = "", actor: str | None = None
) -> AgreementView:
    """A party refuses to sign: the agreement is refused and the mediation ends with `party_refused_to_sign`."""
    a = await agreement_row(s, agreement_id, lock=True)
    case = await case_row(s, a.case_id)
    person = await person_of(s, case, person_id)
    if a.status not in ("draft", "final"):
        raise Conflict("协议已生效，不能拒签 / the agreement is already effective", code="not_signable")
    if a.status == "final":
        await _not_covered(s, a, person)
    a.status, a.refused_by, a.refusal_note = "refused", person.id, note
    case.termination_reason, case.termination_note = Termination.REFUSED_TO_SIGN.value, f"{person.name}: {note}".strip()
    await s.flush()
    await audit.append(s, actor=actor or f"person:{person.id}", action="agreement.refused",
                       subject=subject(case.code, a.id), reason=note, detail={"person_id": person.id})
    return await get_agreement(s, a.id)
