"""Edits to the SDP text of the hub's offers that aiortc cannot express (pure text in, text out; no networking).

`opus_fec_dtx` asks every audio section's Opus for in-band FEC and DTX (RFC 7587 `useinbandfec=1; usedtx=1`).
In an SDP these parameters describe what the *receiver* of the SDP's author can take, so the publisher's
encoder (a browser applying the hub's offer as its remote description) adds FEC to what it sends the hub, and
stops sending during silence. The hub only forwards: its own state (aiortc's local description) needs no change.
"""

from __future__ import annotations

OPUS_PARAMETERS = {"minptime": "10", "useinbandfec": "1", "usedtx": "1"}


def _merge_fmtp(existing: str, wanted: dict[str, str]) -> str:
    params: dict[str, str] = {}
    for item in existing.split(";"):
        key, sep, value = item.strip().partition("=")
        if key:
            params[key] = value if sep else ""
    params.update(wanted)
    return ";".join(f"{k}={v}" if v != "" else k for k, v in params.items())


def opus_fec_dtx(sdp: str) -> str:
    """The same SDP with `minptime=10;useinbandfec=1;usedtx=1` on Opus in every audio section."""
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    out: list[str] = []
    section: list[str] = []

    def flush() -> None:
        out.extend(_audio_section(section) if section and section[0].startswith("m=audio") else section)
        section.clear()

    for line in lines:
        if line.startswith("m="):
            flush()
        section.append(line)
    flush()
    return newline.join(out)


def _audio_section(lines: list[str]) -> list[str]:
    opus = [
        line.split(":", 1)[1].split()[0]
        for line in lines
        if line.startswith("a=rtpmap:") and line.split(None, 1)[-1].lower().startswith("opus/48000")
    ]
    if not opus:
        return lines
    result = list(lines)
    for pt in opus:
        prefix = f"a=fmtp:{pt} "
        index = next((i for i, line in enumerate(result) if line.startswith(prefix)), None)
        if index is not None:
            result[index] = prefix + _merge_fmtp(result[index][len(prefix) :], OPUS_PARAMETERS)
        else:
            rtpmap = next(i for i, line in enumerate(result) if line.startswith(f"a=rtpmap:{pt} "))
            result.insert(rtpmap + 1, prefix + _merge_fmtp("", OPUS_PARAMETERS))
    return result
