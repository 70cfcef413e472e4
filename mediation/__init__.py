"""The domain core of OneDoor: cases, people, sessions, consents, agreements, audit.

Imports no aiohttp, socketio or aiortc (architecture.md; enforced by tests/test_layering.py).
"""
