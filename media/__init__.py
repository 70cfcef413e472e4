"""Media layer: one hub per live session, pass-through forwarding of encoded VP8/Opus frames,
caucus routing, weak-link handling, TURN credentials, and synthetic participants (bots).

See media/hub.py for the Hub API and docs/protocol-media.md for the wire protocol.
"""
