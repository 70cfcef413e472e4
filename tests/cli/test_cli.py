"""The command line as an operator uses it: separate processes on the same data directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def onedoor(*args: str, data: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signaling.cli", *args, "--data-dir", str(data / "data")],
                          capture_output=True, text=True, timeout=timeout)


# the server's stack: an operator's command on the data alone (signaling/cli_admin.py) loads none of it
SERVER = {"aiohttp", "aiortc", "aioice", "av", "socketio", "engineio", "pyhanko", "reportlab"}
COUNTING = ("import atexit, sys\n"
            "from signaling import cli\n"
            "atexit.register(lambda: print('LOADED:' + ','.join(sorted({m.partition('.')[0] for m in sys.modules}"
            f" & set({sorted(SERVER)!r}))), file=sys.stderr))\n"
            "raise SystemExit(cli.main(sys.argv[1:]))\n")


def operator(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    """`onedoor ARGS` as `onedoor` runs it, telling (on stderr) which of the server's packages it loaded."""
    r = subprocess.run([sys.executable, "-c", COUNTING, *args, "--data-dir", str(data / "data")],
                       capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert "LOADED:\n" in r.stderr, r.stderr[-2000:]  # started in under a second, not ~3.5 s of the server
    return r


@pytest.mark.timeout(180)
def test_simulate_runs_a_whole_mediation_and_its_recording_exports(tmp_path: Path) -> None:
    r = onedoor("simulate", "--participants", "3", "--seconds", "4.5", "--json", data=tmp_path, timeout=170)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    bots = out["bots"]
    assert set(bots) == {"staff-1", "inv-1", "inv-2"}
    inside, outside = set(out["caucus"]["members"]), "inv-2"

    def got(who: str, frm: str, phase: str) -> int:
        return sum(v["packets"] for v in bots[who]["phases"][phase].get(frm, {}).values())

    for who in bots:
        for frm in bots:
            if who != frm:
                assert got(who, frm, "joint") > 0 and got(who, frm, "joint_again") > 0, (who, frm)
                blocked = (who in inside) != (frm in inside)
                assert (got(who, frm, "caucus_side_a") == 0) == blocked, (who, frm)
    assert outside not in inside
    assert out["recording"]["export_bytes"] > 10_000 and out["recording"]["export_seconds"] > 1
    # the bots agreed, signed, applied; the judge bot confirmed; the bundle verifies offline, also in its own process
    assert out["agreement"]["status"] == "sealed" and out["ruling"]["outcome"] == "confirmed"
    assert out["verify"]["ok"] is True and out["verify"]["failed_item"] is None
    # the case file: a party's photo, stripped of its EXIF, shown to everyone admitted, carried by the bundle
    [photo] = out["documents"]
    assert photo["uploaded_by"] == "inv-1" and photo["media_type"] == "image/jpeg" and photo["metadata_stripped"]
    assert set(photo["shown_to"]) == set(bots) and set(photo["read_by"]) == set(bots) - {"inv-1"}
    assert out["bundle_contents"]["documents"] == [{"id": photo["id"], "filename": photo["filename"],
                                                    "sha256": photo["sha256"]}]
    # the electronic transcript: written live (the caucus entry stays out), confirmed by both parties' device keys
    tx = out["transcript"]
    assert tx["entries"] == 3 and tx["caucus_entries"] == 1 and tx["clock"] == f"recording:{out['recording']['id']}"
    assert [(r["verdict"], r["recording_may_replace"]) for r in tx["responses"]] == [("confirmed", True)] * 2
    signers = sorted(r["signer"] for r in tx["responses"])
    assert out["bundle_contents"]["transcripts"] == [{"session": tx["session"], "sha256": tx["sha256"],
                                                      "signers": signers}]
    assert out["verify"]["documents_decrypted"] == 1 and out["verify"]["transcript_responses_valid"] == 2
    # the mediator shared a screen during the recording: its own source, in the export and in the bundle, verified
    screen = out["screen"]
    assert screen["by"] == "staff-1" and screen["frames_sent"] > 10
    assert all(n > 0 for n in screen["received_by"].values()), screen
    assert out["recording"]["screen_streams"] and all(x.startswith("staff-1.screen.") for x in
                                                      out["recording"]["screen_streams"])
    assert set(out["recording"]["screen_streams"]) <= set(out["recording"]["export_streams"])
    [rec_in_bundle] = out["bundle_contents"]["recordings"]
    assert rec_in_bundle["screen_streams"] == out["recording"]["screen_streams"]
    assert any("shared screen staff-1.screen" in x for x in out["verify"]["shared_screens"]), out["verify"]
    bundle = Path(out["bundle"])
    assert bundle.parent == tmp_path / "data" / "bundles" and bundle.stat().st_size > 100_000
    court_key = tmp_path / "keys" / "courts" / "court-huangzhong-wrap.pem"
    r = onedoor("verify", str(bundle), "--court-key", str(court_key), "--export", str(tmp_path / "court.mkv"),
                data=tmp_path)  # the center key is pinned from the local key directory
    assert r.returncode == 0 and r.stdout.rstrip().endswith("VALID"), r.stdout + r.stderr
    assert "ruling: 裁定确认调解协议有效" in r.stdout and (tmp_path / "court.mkv").stat().st_size > 10_000
    assert f"document {photo['id']} ({photo['filename']}): decrypted with the court key" in r.stdout, r.stdout
    assert f"transcript of session {tx['session']}: 3 entries" in r.stdout
    assert "shared screen staff-1.screen: 1 stream(s)" in r.stdout, r.stdout
    assert r.stdout.count("confirmed; recording may replace the transcript: yes; signature valid") == 2, r.stdout
    r = onedoor("verify", str(bundle), "--fingerprint", "00" * 32, data=tmp_path)
    assert r.returncode == 1 and "INVALID — center key" in r.stdout


def test_demo_users_and_db_commands(tmp_path: Path) -> None:
    assert operator("db", "upgrade", data=tmp_path).returncode == 0
    r = onedoor("demo", "--base-url", "https://onedoor.example.cn", data=tmp_path)
    assert r.returncode == 0 and "https://onedoor.example.cn/join#" in r.stdout
    r = operator("users", "add", "clerk1", "--role", "intake_clerk", "--name", "书记员", "--password", "long-enough-pw",
                 data=tmp_path)
    assert r.returncode == 0, r.stderr
    r = operator("users", "add", "x", "--role", "emperor", "--name", "x", "--password", "long-enough-pw", data=tmp_path)
    assert r.returncode == 2 and "bad_role" in r.stderr
    r = operator("audit", "verify", data=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"] is True
    # keys live apart from the data directory, private to the owner
    keys = tmp_path / "keys"
    assert (keys / "center-signing.pem").stat().st_mode & 0o077 == 0
    r = operator("keys", "rotate", data=tmp_path)
    assert r.returncode == 0 and "re-wrapped 0 data keys" in r.stdout
    r = operator("recordings", "recover", data=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout) == []


def test_serve_lifts_its_open_file_limit() -> None:
    """A node started with systemd's default soft limit (1,024) lifts it to the hard limit before serving."""
    import resource

    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 4096))

    code = ("import resource; from signaling.cli_server import raise_fd_limit; print(raise_fd_limit(), "
            "resource.getrlimit(resource.RLIMIT_NOFILE))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         preexec_fn=low, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["(4096,", "4096)", "(4096,", "4096)"], out
    assert "raise LimitNOFILE" in out.stderr  # still below what a busy node wants: said so
