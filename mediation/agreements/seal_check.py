"""Offline validation of the center's PAdES seal (pyHanko; no database, no PDF rendering), used by the court's
verifier (`verify`) and by `seal` itself. The seal is made by `seal.seal_pdf`."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

SEAL_FIELD = "CenterSeal"


def validation_context(roots: list[bytes]) -> ValidationContext:
    """Trust exactly these DER roots; never fetch (revocation soft-fail: the verifier is offline)."""
    return ValidationContext(trust_roots=[asn1_x509.Certificate.load(r) for r in roots], allow_fetching=False,
                             revocation_mode="soft-fail")


@dataclass
class SealStatus:
    ok: bool
    summary: str
    signer: str = ""
    timestamp: str = ""
    pades_level: str = ""


async def validate_seal(pdf: bytes, seal_roots: list[bytes], tsa_roots: list[bytes]) -> SealStatus:
    """Validate the center's seal offline: intact, trusted (chains to `seal_roots`), timestamped (`tsa_roots`),
    covering the whole document (only validation-data updates after it). PDF parsing and the signature checks
    are CPU work: they run in a worker thread (with an event loop of its own for pyHanko's async API), so a
    caller's event loop is never blocked."""
    return await asyncio.to_thread(asyncio.run, _validate(pdf, seal_roots, tsa_roots))


async def _validate(pdf: bytes, seal_roots: list[bytes], tsa_roots: list[bytes]) -> SealStatus:
    try:
        r = PdfFileReader(io.BytesIO(pdf))
        sigs = r.embedded_signatures
    except Exception as e:  # a foreign or damaged file
        return SealStatus(False, f"PDF unreadable: {e}")
    if len(sigs) != 1 or sigs[0].field_name != SEAL_FIELD:
        return SealStatus(False, f"expected exactly the center seal, found {[x.field_name for x in sigs]}")
    try:
        st = await async_validate_pdf_signature(sigs[0], signer_validation_context=validation_context(seal_roots),
                                                ts_validation_context=validation_context(tsa_roots))
    except Exception as e:
        return SealStatus(False, f"seal validation error: {e}")
    if not st.bottom_line:
        return SealStatus(False, "seal invalid: " + st.summary())
    if st.timestamp_validity is None:
        return SealStatus(False, "seal has no signature timestamp")
    level = st.modification_level.name if st.modification_level else ""
    if level not in ("NONE", "LTA_UPDATES"):
        return SealStatus(False, f"document modified after sealing ({level})")
    return SealStatus(True, st.summary(), st.signing_cert.subject.human_friendly,
                      st.timestamp_validity.timestamp.isoformat(), "B-LT" if r.root.get("/DSS") else "B-T")
