"""A real headless Chromium as a hub participant, without the web app: the test relays the hub's offers to a page
that answers them (a 440 Hz tone on the audio publish m-line; with `camera=` Chromium's fake camera on the camera
m-line, encoded with that scalability mode, e.g. "L1T3": VP8 with three temporal layers), over the same in-process
channel the bots use (media/channels.py). Only the WebRTC part of a browser is under test here."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Page

from media.channels import DirectChannel, DirectRouter
from media.hub import Hub

FLAGS_EXTRA = ["--autoplay-policy=no-user-gesture-required"]  # the tone's AudioContext runs without a click

PAGE_JS = """
window.__peer = {
  pc: null, mic: null, cam: null, camMode: null, camSize: [640, 480], answers: 0, layersSet: null,
  async answer(offer) {
    if (!this.pc) {
      this.pc = new RTCPeerConnection({iceServers: []});
      // a steady 440 Hz tone (never silent, so DTX stays off and the export has audio to find)
      const ctx = new AudioContext();
      const osc = ctx.createOscillator();
      osc.frequency.value = 440;
      const dst = ctx.createMediaStreamDestination();
      osc.connect(dst);
      osc.start();
      await ctx.resume();
      this.mic = dst.stream.getAudioTracks()[0];
      if (this.camMode) {
        const cam = await navigator.mediaDevices.getUserMedia(
          {video: {width: this.camSize[0], height: this.camSize[1], frameRate: 30}});
        this.cam = cam.getVideoTracks()[0];
      }
      this.pc.ontrack = (e) => {  // play (muted) what arrives, so the receive pipeline runs as in the app
        const a = document.createElement(e.track.kind === "video" ? "video" : "audio");
        a.muted = true; a.autoplay = true; a.srcObject = new MediaStream([e.track]);
        document.body.appendChild(a);
      };
    }
    const pc = this.pc;
    await pc.setRemoteDescription({type: "offer", sdp: offer.sdp});
    const publish = {};
    for (const [source, mid] of Object.entries(offer.publish || {})) publish[mid] = source;
    for (const tr of pc.getTransceivers()) {
      const source = publish[tr.mid];
      if (source === "audio") {
        if (tr.sender.track !== this.mic) await tr.sender.replaceTrack(this.mic);
        tr.direction = "sendonly";
      } else if (source === "camera" && this.cam) {
        if (tr.sender.track !== this.cam) await tr.sender.replaceTrack(this.cam);
        tr.direction = "sendonly";
      } else if (source) {
        tr.direction = "inactive";
      }
    }
    await pc.setLocalDescription(await pc.createAnswer());
    for (const tr of pc.getTransceivers()) {  // temporal layers on the camera's one encoding
      if (publish[tr.mid] === "camera" && this.cam && this.camMode) {
        const params = tr.sender.getParameters();
        if (params.encodings && params.encodings.length &&
            params.encodings[0].scalabilityMode !== this.camMode) {
          params.encodings[0].scalabilityMode = this.camMode;
          await tr.sender.setParameters(params);
        }
        this.layersSet = tr.sender.getParameters().encodings.map((e) => e.scalabilityMode || null);
      }
    }
    this.answers++;
    return pc.localDescription.sdp;
  },
  async stats() {
    const out = {inbound: [], outbound: [], codecs: {}};
    if (!this.pc) return out;
    (await this.pc.getStats()).forEach((s) => {
      if (s.type === "codec") out.codecs[s.id] = {mimeType: s.mimeType, payloadType: s.payloadType};
      if (s.type === "inbound-rtp" && s.kind === "audio") out.inbound.push(s);
      if (s.type === "outbound-rtp" && s.kind === "audio") out.outbound.push(s);
      if (s.type === "inbound-rtp" && s.kind === "video") (out.inboundVideo ||= []).push(s);
      if (s.type === "outbound-rtp" && s.kind === "video") (out.outboundVideo ||= []).push(s);
    });
    return out;
  },
};
"""


class ChromiumPeer:
    """One Chromium page joined to `hub` as `pid`; `stats()` is the page's getStats() for audio (`inbound`,
    `outbound`) and video (`inboundVideo`, `outboundVideo`). `camera`: publish the fake camera with this
    scalability mode ("L1T3": VP8 with three temporal layers; "L1T1": none) at `camera_size` (Chromium's fake camera
    draws any size asked for); `label`: the hub's label for it (e.g. {"priority": 1} for a mediator)."""

    def __init__(
        self,
        page: Page,
        hub: Hub,
        router: DirectRouter,
        pid: str,
        camera: str | None = None,
        camera_size: tuple[int, int] = (640, 480),
        label: dict[str, Any] | None = None,
    ) -> None:
        self.page, self.hub, self.pid, self.camera, self.camera_size = page, hub, pid, camera, camera_size
        self.label = {"name": pid, **(label or {})}
        self.channel = router.attach(DirectChannel(hub, pid))
        self.channel.on("media:offer", self._on_offer)
        self.errors: list[str] = []
        self._lock = asyncio.Lock()

    async def join(self) -> None:
        # an http://localhost origin is a secure context (getUserMedia); the page never leaves the browser
        await self.page.route(
            "http://localhost/**",
            lambda route: route.fulfill(body="<html><body></body></html>", content_type="text/html"),
        )
        await self.page.goto("http://localhost/peer")
        await self.page.evaluate(PAGE_JS)
        if self.camera is not None:
            await self.page.evaluate(
                "([m, size]) => { window.__peer.camMode = m; window.__peer.camSize = size; }",
                [self.camera, list(self.camera_size)],
            )
        await self.hub.add(self.pid, self.label)
        ack = await self.channel.call("media:join", {})
        assert ack.get("ok"), ack

    async def _on_offer(self, offer: dict[str, Any]) -> None:
        async with self._lock:  # one offer at a time, in order (as web/js/media.js)
            try:
                sdp = await self.page.evaluate("(o) => window.__peer.answer(o)", offer)
                ack = await self.channel.call("media:answer", {"type": "answer", "sdp": sdp})
                if not ack.get("ok"):
                    self.errors.append(repr(ack))
            except Exception as exc:  # reported by the test
                self.errors.append(repr(exc))

    async def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.page.evaluate("() => window.__peer.stats()")
        return result

    async def scalability_modes(self) -> list[str | None]:
        """The camera encoding's scalability mode as the sender reports it after setParameters."""
        modes: list[str | None] = await self.page.evaluate("() => window.__peer.layersSet || []")
        return modes

    async def answer_sdp(self) -> str:
        return str(
            await self.page.evaluate("() => window.__peer.pc && window.__peer.pc.localDescription.sdp")
        )
