"""Hostile datagrams at the hub's ICE sockets (security.md, "Malformed input"): a STUN message whose ICE-CONTROLLING
attribute is 4 bytes instead of 8 makes aioice's parser raise struct.error, which aioice does not catch (it catches
ValueError); asyncio then logged one traceback per datagram, so anyone who could reach the port could flood the
log. Now such datagrams are dropped and counted (media/passthrough.py `MALFORMED_STUN`), and media flows on."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from typing import Any

import pytest

from media import internals as ix
from media import passthrough
from tests.media.conftest import PC_SETUP_BLOCKS, MediaSession, wait_until

pytestmark = [pytest.mark.timeout(60), PC_SETUP_BLOCKS]


def short_attribute_stun() -> bytes:
    """A binding request with a 4-byte ICE-CONTROLLING (0x802A) attribute (RFC 8445: 8 bytes)."""
    attribute = struct.pack("!HH", 0x802A, 4) + b"\x00\x01\x02\x03"
    return struct.pack("!HHI", 0x0001, len(attribute), 0x2112A442) + os.urandom(12) + attribute


async def test_malformed_stun_is_dropped_without_a_traceback(make_session: Any, caplog: Any) -> None:
    session: MediaSession = make_session()
    a = await session.join("a")
    await session.join("b")
    await session.flowing()
    pc = session.hub._peers["a"].pc
    assert pc is not None
    dtls = pc.getTransceivers()[0].receiver.transport
    protocols = ix.get(ix.get(dtls.transport, ix.ICE_CONNECTION), ix.CONNECTION_PROTOCOLS)
    host, port = protocols[0].transport.get_extra_info("sockname")[:2]
    before = passthrough.MALFORMED_STUN["dropped"]
    caplog.set_level(logging.ERROR, logger="asyncio")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _ in range(50):
            sock.sendto(short_attribute_stun(), (host, port))
    await wait_until(lambda: passthrough.MALFORMED_STUN["dropped"] - before == 50, within=10)
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    frames = a.received[("b", "camera")].frames
    await asyncio.sleep(1.0)
    assert a.received[("b", "camera")].frames > frames  # the peer connection is unharmed
