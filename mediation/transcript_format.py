"""Wire formats of the electronic transcript (电子笔录, R11): pure functions, no database, so the court's offline
verifier (`onedoor verify`, mediation.agreements.verify) rebuilds the same bytes.

The transcript as closed for review is the canonical JSON (mediation.canonical) of::

    {"type": "onedoor-transcript", "case": <case code>, "session": <session id>, "clock": <what at_ms counts from>,
     "closed_at": <ISO time>, "entries": [{"seq", "speaker", "speaker_id", "at_ms", "text", "source"}, ...]}

Caucus entries are never in it (R9). A party's response signs, with its device key (WebCrypto ECDSA P-256, raw
r||s), the canonical JSON of::

    {"type": "onedoor-transcript-response", "case", "session", "transcript_sha256", "signer": "person:<id>",
     "verdict": "confirmed" | "disputed", "disputes": [{"seq": <entry>, "note": <text>}, ...],
     "recording_may_replace": true | false}
"""

from __future__ import annotations

import json
from typing import Any

from mediation.canonical import canonical_json, sha256_hex

TRANSCRIPT_TYPE = "onedoor-transcript"
RESPONSE_TYPE = "onedoor-transcript-response"
VERDICTS = ("confirmed", "disputed")


def transcript_document(*, case_code: str, session_id: int, clock: str, closed_at: str,
                        entries: list[dict[str, Any]]) -> bytes:
    rows = [{k: e[k] for k in ("seq", "speaker", "speaker_id", "at_ms", "text", "source")} for e in entries]
    return canonical_json({"type": TRANSCRIPT_TYPE, "case": case_code, "session": session_id, "clock": clock,
                           "closed_at": closed_at, "entries": rows})


def response_payload(*, case_code: str, session_id: int, transcript_sha256: str, signer: str, verdict: str,
                     disputes: list[dict[str, Any]], recording_may_replace: bool) -> bytes:
    return canonical_json({
        "type": RESPONSE_TYPE, "case": case_code, "session": session_id, "transcript_sha256": transcript_sha256,
        "signer": signer, "verdict": verdict,
        "disputes": [{"seq": int(d["seq"]), "note": str(d.get("note", ""))} for d in disputes],
        "recording_may_replace": bool(recording_may_replace),
    })


def check_response(document: bytes, response: dict[str, Any]) -> str | None:
    """What is wrong with a stored response against the closed transcript (None when it is consistent): the
    payload names this transcript's hash, the signer and verdict it claims, and disputed passages that exist."""
    doc = json.loads(document)
    payload = json.loads(response["payload"])
    if payload.get("type") != RESPONSE_TYPE or payload.get("transcript_sha256") != sha256_hex(document):
        return "is not over this transcript"
    if payload.get("signer") != response["signer"] or payload.get("verdict") not in VERDICTS:
        return "signer or verdict differs from the payload"
    seqs = {e["seq"] for e in doc["entries"]}
    if any(d["seq"] not in seqs for d in payload["disputes"]):
        return "disputes a passage that is not in the transcript"
    if (payload["verdict"] == "disputed") != bool(payload["disputes"]):
        return "a dispute names no passage (or a confirmation names one)"
    return None
