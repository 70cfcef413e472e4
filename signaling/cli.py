"""`onedoor` command line: the argument parser and a table of which module runs which command.

Only the standard library is imported here; the chosen command's module is imported when it runs, so
`onedoor verify` (signaling/cli_verify.py, the court's offline verifier) never loads the database, web or media
stack. Every command takes --data-dir/--database-url/--key-dir, so a second command works on the data of a running
server.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import logging
import sys
from collections.abc import Callable
from typing import Any, cast

from mediation.errors import OneDoorError  # pure (no third-party imports); every command raises it

# command ("cmd" or "cmd sub") -> "module:function"; the function takes the parsed arguments, returns the exit code
COMMANDS = {
    "serve": "signaling.cli_server:serve",
    "demo": "signaling.cli_server:demo",
    "users add": "signaling.cli_admin:users_add",
    "db upgrade": "signaling.cli_admin:db_upgrade",
    "audit verify": "signaling.cli_admin:audit_verify",
    "keys rotate": "signaling.cli_records:keys_rotate",
    "recordings recover": "signaling.cli_records:recordings_recover",
    "recordings export": "signaling.cli_records:recordings_export",
    "retention expire": "signaling.cli_records:retention_expire",
    "retention set": "signaling.cli_records:retention_set",
    "retention hold": "signaling.cli_records:retention_hold",
    "simulate": "signaling.cli_simulate:simulate",
    "node drain": "signaling.cluster:drain_command",
    "verify": "signaling.cli_verify:verify",
}


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default="var/data", help="database and recordings (default var/data)")
    common.add_argument("--key-dir", default=None, help="keys, kept apart from data (default <data-dir>/../keys)")
    common.add_argument("--database-url", default=None, help="e.g. postgresql+asyncpg://user@host/db")
    common.add_argument("--base-url", default=None, help="the server's public URL, for printed links")
    p = argparse.ArgumentParser(prog="onedoor", description="OneDoor video mediation server")
    sub = p.add_subparsers(dest="cmd", required=True)
    _server_parsers(sub, common)
    _records_parsers(sub, common)
    _simulate_parser(sub, common)
    _verify_parser(sub, common)
    return p


def _network(text: str) -> str:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a network (CIDR such as 192.0.2.0/24): {text!r}") from None
    return text


def _server_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("serve", parents=[common], help="run the server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--redis-url", default=None, help="Socket.IO across nodes (AsyncRedisManager)")
    s.add_argument("--node-url", default=None,
                   help="this node's own public address: makes it one node of several (needs --redis-url)")
    s.add_argument("--node-id", default=None, help="this node's name in the cluster (default: from --node-url)")
    s.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port")
    s.add_argument("--metrics-host", default="127.0.0.1", help="address of the /metrics listener (private)")
    s.add_argument("--ice-url", action="append", default=[], help="a STUN/TURN URL offered to clients (repeatable)")
    s.add_argument("--turn-url", action="append", default=[], help="coturn URL for per-join credentials (repeatable)")
    s.add_argument("--ice-network", action="append", default=[], type=_network, metavar="CIDR",
                   help="offer media (ICE host candidates) only on local addresses in this network (repeatable; "
                        "default: every address)")
    s.add_argument("--ice-exclude", action="append", default=[], type=_network, metavar="CIDR",
                   help="never offer media on local addresses in this network (repeatable), e.g. containers' "
                        "bridges or a VPN that comes and goes")
    s.add_argument("--turn-secret-file", default=None, help="file holding coturn's static-auth-secret")
    s.add_argument("--s3-bucket", default=None, help="store recordings in this S3-compatible bucket")
    s.add_argument("--s3-endpoint", default=None)
    s.add_argument("--secure-cookies", action="store_true", help="behind HTTPS")
    s.add_argument("--speech-model", default=None, metavar="DIR",
                   help="speech-to-text drafts for the transcript from this model directory (off without it)")
    s.add_argument("--speech-engine", default="sherpa-onnx", help="the engine the model is for (sherpa-onnx)")
    s.add_argument("--speech-threads", type=int, default=1, help="recognizer threads")
    sub.add_parser("demo", parents=[common], help="create a demo center, staff accounts and a case; print links")
    u = sub.add_parser("users", parents=[common], help="manage staff accounts").add_subparsers(dest="sub",
                                                                                                 required=True)
    ua = u.add_parser("add", parents=[common])
    ua.add_argument("username")
    ua.add_argument("--role", required=True)
    ua.add_argument("--name", required=True)
    ua.add_argument("--password", required=True)
    ua.add_argument("--court-id", default=None)
    nd = sub.add_parser("node", help="nodes of a cluster").add_subparsers(dest="sub", required=True)
    dr = nd.add_parser("drain", help="stop placing new sessions on a node (for an upgrade)")
    dr.add_argument("--redis-url", required=True)
    dr.add_argument("--node-id", required=True)
    dr.add_argument("--undo", action="store_true", help="take sessions again")
    db = sub.add_parser("db", parents=[common]).add_subparsers(dest="sub", required=True)
    db.add_parser("upgrade", parents=[common], help="apply migrations")
    au = sub.add_parser("audit", parents=[common]).add_subparsers(dest="sub", required=True)
    au.add_parser("verify", parents=[common], help="check the hash chain and signed checkpoints")


def _records_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    k = sub.add_parser("keys", parents=[common]).add_subparsers(dest="sub", required=True)
    k.add_parser("rotate", parents=[common], help="new master key; re-wrap every data key (media untouched)")
    r = sub.add_parser("recordings", parents=[common]).add_subparsers(dest="sub", required=True)
    rc = r.add_parser("recover", parents=[common], help="verify every segment; finalize interrupted recordings")
    rc.add_argument("--redis-url", default=None, help="nodes of several: leave alone the recordings whose session a "
                    "node owns now (it is continuing them); without it every interrupted recording is finalized")
    e = r.add_parser("export", parents=[common], help="decrypt to ONE playable file (or --raw tracks)")
    e.add_argument("recording_id")
    e.add_argument("--out", required=True)
    e.add_argument("--raw", action="store_true")
    e.add_argument("--reason", required=True, help="why it is read (logged, R10)")
    t = sub.add_parser("retention", parents=[common]).add_subparsers(dest="sub", required=True)
    t.add_parser("expire", parents=[common], help="destroy the keys of expired recordings not on legal hold")
    s = t.add_parser("set", parents=[common])
    s.add_argument("record_type")
    s.add_argument("days", type=int)
    s.add_argument("--reason", required=True)
    h = t.add_parser("hold", parents=[common])
    h.add_argument("recording_id")
    h.add_argument("--release", action="store_true")
    h.add_argument("--reason", required=True)


def _simulate_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("simulate", parents=[common], help="run a mediation with synthetic participants")
    s.add_argument("--participants", type=int, default=3, help="mediator + parties (3..9)")
    s.add_argument("--seconds", type=float, default=12.0, help="length of the media part")
    s.add_argument("--json", action="store_true", help="print only the JSON summary")
    s.add_argument("--out", default=None, help="where to write the evidence bundle")
    s.add_argument("--server", action="append", default=[], metavar="URL",
                   help="run against these running nodes (repeatable; participants enter through each in turn) "
                        "sharing --database-url, --key-dir and --s3-bucket with them")
    s.add_argument("--s3-bucket", default=None, help="with --server: the nodes' recording bucket")
    s.add_argument("--s3-endpoint", default=None)


def _verify_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    v = sub.add_parser("verify", parents=[common], help="verify an evidence bundle offline")
    v.add_argument("bundle", help="the evidence bundle (zip) a court fetched")
    pin = v.add_mutually_exclusive_group()
    pin.add_argument("--fingerprint", help="the center key fingerprint printed on the agreement")
    pin.add_argument("--center-key", help="PEM file with the center's public key")
    v.add_argument("--court-key", help="the court's X25519 private key (PEM): decrypts the recordings")
    v.add_argument("--export", help="with --court-key: write the recording to this file (Matroska)")


def handler(key: str) -> Callable[[argparse.Namespace], int]:
    """Import the module of one command (and only that one) and return its function."""
    module, _, name = COMMANDS[key].partition(":")
    return cast(Callable[[argparse.Namespace], int], getattr(importlib.import_module(module), name))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    a = parser().parse_args(argv)
    key = a.cmd + (f" {a.sub}" if getattr(a, "sub", None) else "")
    fn = handler(key)
    try:
        return fn(a)
    except OneDoorError as e:
        print(f"error: {e.message} ({e.code})", file=sys.stderr)
        return 2


if __name__ == "__main__":  # `python -m signaling.cli`
    raise SystemExit(main())
