"""Edits to the SDP text of the hub's offers that aiortc cannot express (pure text in, text out; no networking).

`opus_fec_dtx` asks every audio section's Opus for in-band FEC and DTX (RFC 7587 `useinbandfec=1; usedtx=1`).
In an SDP these parameters describe what the *receiver* of the SDP's author can take, so the publisher's
encoder (a browser applying the hub's offer as its remote description) adds FEC to what it sends the hub, and
stops sending during silence. The hub only forwards: its own state (aiortc's local description) needs no change.

`offer_red` adds RED (RFC 2198, `red/48000/2` with `a=fmtp:63 <opus>/<opus>`: one redundant Opus block) to every
audio section, BEFORE Opus: Chromium sends RED only when red precedes the codec it protects in the negotiated
list, and its answer keeps the offer's order. aiortc has no RED codec and is not taught one: an aiortc client
(the bots) drops the unknown codec from its answer and keeps Opus; the hub's own aiortc state never lists red
either (its receivers learn the payload type through `passthrough.accept_extra_codec`, the slots' forwarders
through `red_payload_types` of the answer). RED_PT is Chromium's own number for red.
"""

from __future__ import annotations

from typing import Any

OPUS_PARAMETERS = {"minptime": "10", "useinbandfec": "1", "usedtx": "1"}
RED_PT = 63


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
    return _each_audio_section(sdp, _audio_section)


def offer_red(sdp: str) -> str:
    """The same SDP with `red/48000/2` (payload type RED_PT, protecting Opus) first in every audio section."""
    return _each_audio_section(sdp, _red_section)


def red_payload_types(description: Any) -> dict[str, int]:
    """mid -> the red payload type, for each audio section of a parsed SDP (aiortc.sdp.SessionDescription)
    whose codecs include red."""
    out: dict[str, int] = {}
    for media in description.media:
        if media.kind != "audio" or media.rtp.muxId is None:
            continue
        pt = next((c.payloadType for c in media.rtp.codecs if c.mimeType.lower() == "audio/red"), None)
        if pt is not None:
            out[media.rtp.muxId] = pt
    return out


def _each_audio_section(sdp: str, edit: Any) -> str:
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    out: list[str] = []
    section: list[str] = []

    def flush() -> None:
        out.extend(edit(section) if section and section[0].startswith("m=audio") else section)
        section.clear()

    for line in lines:
        if line.startswith("m="):
            flush()
        section.append(line)
    flush()
    return newline.join(out)


def _opus_pts(lines: list[str]) -> list[str]:
    return [
        line.split(":", 1)[1].split()[0]
        for line in lines
        if line.startswith("a=rtpmap:") and line.split(None, 1)[-1].lower().startswith("opus/48000")
    ]


def _red_section(lines: list[str]) -> list[str]:
    opus = _opus_pts(lines)
    red = str(RED_PT)
    if not opus or any(line.startswith(f"a=rtpmap:{red} ") for line in lines):
        return lines
    formats = lines[0].split()
    if red in formats[3:]:
        return lines
    first = opus[0]
    formats.insert(formats.index(first, 3) if first in formats[3:] else 3, red)
    result = [" ".join(formats), *lines[1:]]
    rtpmap = next(i for i, line in enumerate(result) if line.startswith(f"a=rtpmap:{first} "))
    result[rtpmap:rtpmap] = [f"a=rtpmap:{red} red/48000/2", f"a=fmtp:{red} {first}/{first}"]
    return result


def _audio_section(lines: list[str]) -> list[str]:
    opus = _opus_pts(lines)
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
