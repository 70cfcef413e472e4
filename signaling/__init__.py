"""The OneDoor server: aiohttp app, HTTP API, Socket.IO `/session` namespace, CLI."""
