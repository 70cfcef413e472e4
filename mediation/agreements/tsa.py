"""RFC 3161 timestamps: the built-in TSA (in-process, dev key from `pki.DevPKI`) or an external TSA by URL.

`check_token` is the offline check a court's verifier runs: the token's message imprint equals SHA-256 of the
timestamped bytes and its signer chains to a pinned TSA root. No revocation fetching, no network.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.timestamps import DummyTimeStamper, TimeStamper, TimestampRequestError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from mediation.agreements.pki import DevPKI
from mediation.errors import IntegrityError, OneDoorError

log = logging.getLogger(__name__)


class TimestampUnavailable(OneDoorError):
    """The timestamp authority could not be reached or refused the request; nothing was changed."""

    code = "tsa_unavailable"
    status = 503


@dataclass(frozen=True)
class Stamp:
    token: bytes  # DER TimeStampToken (a CMS ContentInfo)
    gen_time: dt.datetime


class TimestampAuthority:
    """Wraps a pyHanko `TimeStamper`; `roots` are the DER certificates a verifier must trust for its tokens."""

    def __init__(self, stamper: TimeStamper, roots: list[bytes], name: str) -> None:
        self.stamper = stamper
        self.roots = roots
        self.name = name

    @classmethod
    def builtin(cls, pki: DevPKI) -> TimestampAuthority:
        stamper = DummyTimeStamper(
            tsa_cert=pki.tsa.asn1_cert(), tsa_key=pki.tsa.asn1_key(),
            certs_to_embed=SimpleCertificateStore.from_certs([pki.root.asn1_cert()]),
        )
        return cls(stamper, [pki.root.cert_der], "built-in")

    @classmethod
    def external(cls, url: str, roots: list[bytes], auth: tuple[str, str] | None = None) -> TimestampAuthority:
        """An external RFC 3161 TSA over HTTP (pyHanko's client); `roots` = its trust anchors (DER)."""
        from pyhanko.sign.timestamps import HTTPTimeStamper

        return cls(HTTPTimeStamper(url, auth=auth, timeout=10), roots, url)

    async def stamp(self, data: bytes) -> Stamp:
        try:
            # off the event loop: the built-in authority signs and encodes the token (~100 ms of CPU on a busy
            # machine); pyHanko's coroutine runs in the worker thread's own loop (the stampers keep no loop state)
            digest = hashlib.sha256(data).digest()
            token = await asyncio.to_thread(asyncio.run, self.stamper.async_timestamp(digest, "sha256"))
        except (OSError, TimestampRequestError) as e:
            log.warning("timestamp authority %s failed: %s", self.name, e)
            raise TimestampUnavailable(
                "可信时间戳服务暂不可用，请稍后重试 / the timestamp authority is unavailable; try again",
                tsa=self.name) from e
        der = token.dump()
        return Stamp(der, token_time(der))


def _tst_info(token: bytes) -> tsp.TSTInfo:
    ci = cms.ContentInfo.load(token)
    info = ci["content"]["encap_content_info"]["content"].parsed
    if not isinstance(info, tsp.TSTInfo):
        raise ValueError("not a TSTInfo")
    return info


def token_time(token: bytes) -> dt.datetime:
    gen = _tst_info(token)["gen_time"].native
    assert isinstance(gen, dt.datetime)
    return gen.astimezone(dt.UTC)


async def check_token(token: bytes, data: bytes, roots: list[bytes]) -> dt.datetime:
    """Verify a timestamp token over `data` against trusted TSA roots; return its time. Raises IntegrityError."""
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data

    try:
        ci = cms.ContentInfo.load(token)
        signed_data = ci["content"]
        info = _tst_info(token)
    except Exception as e:  # any parse failure of a foreign token is an integrity failure
        raise IntegrityError("timestamp token unreadable", code="timestamp_invalid") from e
    algo = info["message_imprint"]["hash_algorithm"]["algorithm"].native
    if algo != "sha256" or info["message_imprint"]["hashed_message"].native != hashlib.sha256(data).digest():
        raise IntegrityError("timestamp does not cover this record", code="timestamp_mismatch")
    vc = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(r) for r in roots], allow_fetching=False,
        revocation_mode="soft-fail",
    )
    try:
        status = await validate_tst_signed_data(
            signed_data, vc, lambda _algo: hashlib.sha256(data).digest()
        )
    except Exception as e:
        raise IntegrityError(f"timestamp signature invalid: {e}", code="timestamp_invalid") from e
    if not (status["intact"] and status["valid"]):
        raise IntegrityError("timestamp signature invalid", code="timestamp_invalid")
    if status["trust_problem_indic"] is not None or status["validation_path"] is None:
        raise IntegrityError("timestamp authority not trusted", code="timestamp_untrusted")
    return token_time(token)
