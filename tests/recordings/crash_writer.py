"""Child process for the crash test: records pre-encoded packets in real time until it is killed.

Usage: python crash_writer.py DATA_DIR KEY_DIR PACKETS_PICKLE. Prints "started <id>" and then "pts <ms>"
after each packet handed to the recorder; the parent sends SIGKILL mid-way.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
import time
from pathlib import Path

from mediation.db import Database
from mediation.keyring import KeyRing
from recordings.recorder import Participant, Recorder
from recordings.storage import LocalStorage


async def main(data_dir: Path, key_dir: Path, packets: list[tuple[str, int, bool, bytes]]) -> None:
    db = Database(f"sqlite+aiosqlite:///{data_dir}/t.db")
    rec = await Recorder.start(
        db=db,
        storage=LocalStorage(data_dir / "recordings"),
        keyring=KeyRing.load_or_create(key_dir),
        session_id="sess-crash",
        case_code="QH-HX-2026-000777",
        participants=[Participant("alice", "Alice", consented=True)],
        actor="mediator:1",
        reason="consented",
    )
    print("started", rec.recording_id, flush=True)
    t0 = time.monotonic()
    for kind, pts, key, data in packets:
        delay = t0 + pts / 1000 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await rec.write("alice", kind, data, pts, key)
        print("pts", pts, flush=True)
    await asyncio.sleep(3600)  # never stop cleanly: the parent kills us


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), pickle.loads(Path(sys.argv[3]).read_bytes())))
