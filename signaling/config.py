"""Typed configuration, passed in (style.md 4): nothing is read from the environment at import time."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediation.identity import CodeSender, LogCodeSender
from mediation.keyring import default_key_dir

DEMO_PASSWORD = "onedoor-demo-2026"  # `onedoor demo` staff accounts: development only, printed by the command


@dataclass
class Settings:
    data_dir: Path = Path("var/data")
    key_dir: Path | None = None  # default: <data_dir>/../keys, kept apart from the data (R14)
    database_url: str | None = None  # default: SQLite file in data_dir
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str | None = None  # what links are printed with; default http://host:port
    ice_servers: list[dict[str, Any]] = field(default_factory=list)  # no public STUN by default
    turn_secret: str | None = None  # coturn use-auth-secret
    turn_urls: list[str] = field(default_factory=list)
    turn_ttl: int = 3600
    turn_ca_file: str | None = None  # PEM CA(s) of the turns: server's certificate for aiortc clients (bots)
    # a participant whose connection drops keeps its place, media and recording stream this long (seconds)
    reconnect_grace: float = 30.0
    code_sender: CodeSender = field(default_factory=LogCodeSender)
    redis_url: str | None = None  # Socket.IO across nodes
    # a node of several (docs/architecture.md, "Nodes"): its own address for clients; needs redis_url
    node_url: str | None = None
    node_id: str | None = None  # default: derived from node_url
    lease_ms: int = 5000  # a session's owner lease (renewed every third of it); a dead node's expire with it
    metrics_host: str = "127.0.0.1"  # /metrics listens apart from the public port (never behind the proxy)
    metrics_port: int | None = None
    max_event_bytes: int = 64 * 1024  # largest Socket.IO payload (SDP offers are the big ones)
    events_per_second: float = 20.0
    event_burst: int = 60
    # what may wait to be sent to one client that does not read; past it the client is dropped (`slow client`)
    max_outgoing_bytes: int = 1024 * 1024
    secure_cookies: bool = False  # True behind HTTPS
    s3_bucket: str | None = None  # recordings in an S3-compatible store instead of data_dir/recordings
    s3_endpoint: str | None = None
    # export jobs (recordings/export_queue.py): how many ffmpeg exports one node runs at once; with redis_url, a
    # running job not touched for export_heartbeat s is handed to another node (checked every export_sweep s);
    # 0 workers: this node only queues. A finished export is deleted export_keep_days after it finished.
    export_concurrency: int = 1
    export_heartbeat: int = 15
    export_sweep: int = 5
    export_keep_days: float = 7.0
    web_dir: Path | None = None  # default: the installed `web` package

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.key_dir is None:
            self.key_dir = default_key_dir(self.data_dir)
        self.key_dir = Path(self.key_dir)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'onedoor.db'}"

    @property
    def public_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")
