"""The table of aiortc/aioice internals (media/internals.py): the check passes on the pinned versions, fails
loudly naming the internal when one disappears, covers what only exists on a connected peer connection, and
cannot drift from the code (media/ touches no foreign private name and imports no non-public name that the
table does not list)."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aioice
import aioice.ice
import aiortc
import pytest
from aiortc import RTCConfiguration, RTCDtlsTransport, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender

from media import internals, passthrough
from media.config import MediaConfig
from media.errors import AiortcInternalsChanged
from media.hub import Hub

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
MEDIA = ROOT / "media"


@pytest.fixture(autouse=True)
def fresh_check() -> Iterator[None]:
    passthrough.check_aiortc_internals.cache_clear()
    yield
    passthrough.check_aiortc_internals.cache_clear()


def test_every_internal_in_the_table_holds_on_the_pinned_versions() -> None:
    assert internals.problems() == []
    passthrough.check_aiortc_internals()


def test_the_table_lists_what_the_issue_named() -> None:
    labels = {e.label for e in internals.TABLE}
    for label in (
        "aiortc.rtcdtlstransport.RTCDtlsTransport._rx_srtp",
        "aiortc.rtcdtlstransport.RTCDtlsTransport._rtp_router",
        "aiortc.rtcdtlstransport.RTCDtlsTransport._rtp_header_extensions_map",
        "aiortc.rtcicetransport.RTCIceTransport._connection",
        "aioice.ice.Connection._protocols",
        "aioice.ice.StunProtocol.datagram_received",
        "aiortc.rtcrtpreceiver.RTCRtpReceiver._enabled",
    ):
        assert label in labels
    assert len(labels) == len(internals.TABLE)  # one entry per internal


def test_aioice_and_aiortc_are_pinned_exactly_in_pyproject() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"aiortc=={internals.AIORTC_VERSION}" in deps
    assert f"aioice=={internals.AIOICE_VERSION}" in deps
    assert (aiortc.__version__, aioice.__version__) == (internals.AIORTC_VERSION, internals.AIOICE_VERSION)


# -- negative: take one internal away (restored in finally); the check must name it -----------------------
@contextmanager
def without_class_attribute(cls: type, name: str) -> Iterator[None]:
    original = cls.__dict__[name]
    delattr(cls, name)
    try:
        yield
    finally:
        setattr(cls, name, original)


@contextmanager
def without_instance_attribute(cls: type, name: str) -> Iterator[None]:
    """Every new instance of `cls` lacks `name` (as if aiortc/aioice had renamed it in __init__)."""
    original = cls.__dict__["__init__"]

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        delattr(self, name)

    cls.__init__ = init  # type: ignore[misc]
    try:
        yield
    finally:
        cls.__init__ = original  # type: ignore[misc]


@contextmanager
def entry_renamed(entry: internals.Internal, name: str) -> Iterator[None]:
    """As if the pinned package had renamed what `entry` names: the table now asks for `name`."""
    index = internals.TABLE.index(entry)
    internals.TABLE[index] = dataclasses.replace(entry, name=name)
    try:
        yield
    finally:
        internals.TABLE[index] = entry


BREAKAGES: dict[str, tuple[Callable[[], Any], str]] = {
    "dtls _rx_srtp renamed": (
        lambda: without_instance_attribute(RTCDtlsTransport, "_rx_srtp"),
        "RTCDtlsTransport._rx_srtp",
    ),
    "dtls _rtp_router renamed": (
        lambda: without_instance_attribute(RTCDtlsTransport, "_rtp_router"),
        "RTCDtlsTransport._rtp_router",
    ),
    "receiver _enabled renamed": (
        lambda: without_instance_attribute(RTCRtpReceiver, "_enabled"),
        "RTCRtpReceiver._enabled",
    ),
    "receiver __decoder_queue renamed": (
        lambda: without_instance_attribute(RTCRtpReceiver, "_RTCRtpReceiver__decoder_queue"),
        "RTCRtpReceiver.__decoder_queue",
    ),
    # Deleting aioice's own _protocols would break aioice itself (gathering fails, sockets leak); a rename inside
    # aioice looks to us like our entry naming something that is not there:
    "aioice Connection _protocols renamed": (
        lambda: entry_renamed(internals.CONNECTION_PROTOCOLS, "_protocols_v2"),
        "aioice.ice.Connection._protocols_v2",
    ),
    "StunProtocol.datagram_received gone (asyncio's no-op base remains)": (
        lambda: without_class_attribute(aioice.ice.StunProtocol, "datagram_received"),
        "aioice.ice.StunProtocol.datagram_received",
    ),
    "receiver _send_rtcp_pli gone": (
        lambda: without_class_attribute(RTCRtpReceiver, "_send_rtcp_pli"),
        "RTCRtpReceiver._send_rtcp_pli",
    ),
    "sender _retransmit gone": (
        lambda: without_class_attribute(RTCRtpSender, "_retransmit"),
        "RTCRtpSender._retransmit",
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_check_fails_loudly_naming_the_missing_internal_and_versions(breakage: str) -> None:
    make, name = BREAKAGES[breakage]
    with make(), pytest.raises(AiortcInternalsChanged) as failure:
        passthrough.check_aiortc_internals()
    message = str(failure.value)
    assert name in message
    assert f"aiortc {aiortc.__version__}" in message and f"aioice {aioice.__version__}" in message
    passthrough.check_aiortc_internals.cache_clear()
    passthrough.check_aiortc_internals()  # restored: passes again


def test_hub_creation_runs_the_check() -> None:
    async def send(pid: str, event: str, payload: dict[str, Any]) -> None:
        return None

    with without_instance_attribute(RTCDtlsTransport, "_rtp_header_extensions_map"):
        with pytest.raises(AiortcInternalsChanged, match="_rtp_header_extensions_map"):
            Hub("s", MediaConfig(), send)
    passthrough.check_aiortc_internals.cache_clear()
    Hub("s", MediaConfig(), send)


def test_the_hooks_fail_loudly_at_setup_not_per_packet() -> None:
    class Bare:
        pass

    with pytest.raises(AiortcInternalsChanged, match=r"RTCRtpSender\._send_keyframe.*aiortc 1\."):
        passthrough.on_keyframe_request(Bare(), lambda: None)  # type: ignore[arg-type]
    with pytest.raises(AiortcInternalsChanged, match="__started"):
        passthrough.forward_receiver(Bare(), print, print, bool)  # type: ignore[arg-type]


# -- instance-level values that exist only once DTLS is up: a real loopback pair --------------------------
async def test_connected_peer_connection_has_srtp_sessions_and_a_nominated_pair() -> None:
    config = RTCConfiguration(iceServers=[])
    a, b = RTCPeerConnection(configuration=config), RTCPeerConnection(configuration=config)
    states: list[str] = []
    both = asyncio.Event()

    @a.on("connectionstatechange")
    def _state() -> None:
        states.append(a.connectionState)
        _both()

    @b.on("connectionstatechange")
    def _b_state() -> None:
        _both()

    def _both() -> None:
        if a.connectionState == b.connectionState == "connected":
            both.set()

    try:
        a.addTransceiver("audio", direction="sendrecv")
        await a.setLocalDescription(await a.createOffer())
        hooked = passthrough.fast_rtp_path(a)  # after gathering, as media/peer.py does
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        await asyncio.wait_for(both.wait(), 10)
        assert states == ["connecting", "connected"]
        assert hooked > 0
        internals.check_connected(a)
        internals.check_connected(b)
        state, key = vars(a.getTransceivers()[0].receiver.transport), internals.DTLS_RX_SRTP.attr
        with pytest.raises(AiortcInternalsChanged, match="_rx_srtp has no unprotect"):
            original, state[key] = state[key], object()
            try:
                internals.check_connected(a)
            finally:
                state[key] = original
    finally:
        await a.close()
        await b.close()


# -- drift: the code takes its names from the table ----------------------------------------------------
def _media_modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(MEDIA.glob("*.py")) if p.name != "internals.py"]


def _own_private_names() -> set[str]:
    """`_x` names media/ defines itself (self._x = ..., module and class level defs)."""
    own: set[str] = set()
    for _, tree in _media_modules():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
            ):
                own.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                own.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                own.add(node.target.id)
    return {n for n in own if n.startswith("_")}


def test_media_touches_no_foreign_private_name_outside_the_table() -> None:
    own = _own_private_names()
    table = {e.attr for e in internals.TABLE} | {e.name for e in internals.TABLE}
    stray: list[str] = []
    for path, tree in _media_modules():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                if node.attr in own or node.attr.startswith("_onedoor"):
                    continue
                stray.append(f"{path.name}:{node.lineno}: .{node.attr}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value in table or node.value.startswith(("_RTC", "_Stun", "_Connection")):
                    stray.append(f"{path.name}:{node.lineno}: {node.value!r} (use the table's entry)")
    assert stray == [], "aiortc/aioice internals used without media/internals.py: " + ", ".join(stray)


def test_non_public_aiortc_and_aioice_imports_are_in_the_table() -> None:
    public = {"aiortc": set(aiortc.__all__), "aioice": set(aioice.__all__)}
    listed = {(e.owner, e.name) for e in internals.TABLE}
    unlisted: list[str] = []
    for path, tree in _media_modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            package = node.module.split(".")[0]
            if package not in public:
                continue
            for alias in node.names:
                if alias.name in public[package]:
                    continue
                module_import = node.module == package  # from aiortc import sdp
                if module_import and any(o.startswith(f"{package}.{alias.name}") for o, _ in listed):
                    continue
                if (node.module, alias.name) not in listed:
                    unlisted.append(f"{path.name}:{node.lineno}: {node.module}.{alias.name}")
    assert unlisted == []


def test_every_private_entry_is_used_through_the_table() -> None:
    code = "\n".join(p.read_text() for p, _ in _media_modules())
    constants = {id(v): k for k, v in vars(internals).items() if isinstance(v, internals.Internal)}
    assert len(constants) == len(internals.TABLE)
    unused = [
        constants[id(e)]
        for e in internals.TABLE
        if e.name.startswith("_")
        and e.kind is not internals.Kind.BEHAVIOUR
        and f"ix.{constants[id(e)]}" not in code
    ]
    assert unused == []


def test_source_checks_read_functions_not_classes() -> None:
    # inspect.getsource(class) parses the whole module with ast (slow, and a CPython 3.11.7 SystemError)
    import inspect

    targets = [where for e in internals.TABLE for where, _ in e.calls]
    assert targets and not [t for t in targets if inspect.isclass(internals._resolve(t))]
