"""Taking a session over from a lost node, and letting one go (issue 14 item 4; docs/architecture.md, "Nodes").

`restore`: the first connection for a session on a node that owns it now rebuilds its `LiveSession` from the
durable record (mediation.live_restore): admissions, the open private room, the joint recording and, when the
center records caucuses, the open caucus's privileged recording (R9); each goes on as the next part of the same
recording (recordings.recorder.Recorder.continue_part; each write that starts a part is fenced with this node's
lease). A fresh session has none of these, and nothing happens.

`let_go`: this node's lease was taken by another node (it was presumed dead): its people are disconnected (their
clients rejoin and are sent to the owner) and its copy stops without writing anything more.
"""

from __future__ import annotations

import logging

from media.recorder import RecorderParticipant
from mediation.live import LiveSession
from mediation.live_restore import durable_live
from recordings.recorder import Recorder
from signaling.events_media import hub_for
from signaling.publish import Publisher
from signaling.recording_events import fence_for, record_caucus_with
from signaling.services import Services

log = logging.getLogger(__name__)


async def restore(sv: Services, publisher: Publisher, live: LiveSession) -> None:
    state = await durable_live(sv.db, live.session_id)
    if state.ended or not state.anything:
        return
    fence = fence_for(sv, live.session_id)
    live.restore(state.admitted, state.caucus, state.caucus_kind)
    hub = hub_for(sv, publisher, live)
    await live.sync_caucus()
    for rid, status in state.recordings[-1:]:  # the joint recording (one at a time)
        rec = await Recorder.continue_part(db=sv.db, storage=sv.storage, keyring=sv.keys, recording_id=rid,
                                           actor="server", reason="continued on this node after the owner was lost",
                                           fence=fence)
        live.recorder = RecorderParticipant(hub, rec)
        live.recorder.start()
        live.set_recording("running" if status == "recording" else "paused")
    if state.caucus_recording is not None:  # the privileged caucus recording (center policy, R9), same way
        rec = await Recorder.continue_part(db=sv.db, storage=sv.storage, keyring=sv.keys,
                                           recording_id=state.caucus_recording, actor="server",
                                           reason="continued on this node after the owner was lost", fence=fence)
        await record_caucus_with(hub, live, rec)
    node = sv.cluster.node_id if sv.cluster is not None else "-"
    log.warning("session %s taken over by node %s: %d admitted, caucus %s, recording %s", live.session_id, node,
                len(state.admitted), sorted(state.caucus) or "closed", live.recording)


async def let_go(live: LiveSession) -> None:
    """Stop this node's copy of a session another node owns now: no stop event, no manifest, no more segments."""
    await live.close()
    for rp in (live.recorder, live.caucus_recorder):
        if isinstance(rp, RecorderParticipant):
            await rp.abandon()
    live.recorder = live.caucus_recorder = None
    if live.media is not None:
        await live.media.close()
