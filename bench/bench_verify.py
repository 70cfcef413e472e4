"""Time the offline bundle verifier: a full verification, and rejection of tampered copies.

    python bench/bench_verify.py                      # builds a bundle in a temp dir (real keys, real PDF)
    python bench/bench_verify.py BUNDLE.zip FINGERPRINT [-n 20]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mediation.agreements.verify import averify_bundle


async def make_bundle(tmp: Path) -> tuple[bytes, str]:
    from mediation.agreements import judging
    from mediation.agreements.bundle import build_bundle
    from mediation.agreements.courts import CourtDirectory
    from mediation.agreements.notary import AgreementSettings, Notary
    from mediation.db import Base, Database
    from mediation.keyring import KeyRing
    from tests.agreements.conftest import make_world
    from tests.agreements.helpers import sealed_agreement, submitted_application

    keys = tmp / "keys"
    notary = Notary.load(AgreementSettings(key_dir=keys), KeyRing.load_or_create(keys))
    courts = CourtDirectory.load_or_create_dev(keys)
    db = Database(f"sqlite+aiosqlite:///{tmp}/bench.db")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    w = await make_world(db, notary, courts)
    app = await submitted_application(w, await sealed_agreement(w))
    async with db.session() as s:
        await judging.accept(s, app.id, judge_id=w.judge_id)
        await judging.rule(s, app.id, judge_id=w.judge_id, outcome="confirmed", courts=courts)
    async with db.session() as s:
        b = await build_bundle(s, app.id, judge_id=w.judge_id, notary=notary, courts=courts)
    await db.close()
    return b.data, notary.keyring.fingerprint


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", nargs="?")
    ap.add_argument("fingerprint", nargs="?")
    ap.add_argument("-n", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.bundle:
            data, fp = await asyncio.to_thread(Path(args.bundle).read_bytes), args.fingerprint
        else:
            data, fp = await make_bundle(Path(tmp))
    t0 = time.perf_counter()
    for _ in range(args.n):
        report = await averify_bundle(data, fp)
        assert report.ok, report.text()
    full = (time.perf_counter() - t0) / args.n
    rng, n_bad = random.Random(1), 1000
    t0 = time.perf_counter()
    for _ in range(n_bad):
        bad = bytearray(data)
        bad[rng.randrange(len(bad))] ^= 1
        assert not (await averify_bundle(bytes(bad), fp)).ok
    tampered = (time.perf_counter() - t0) / n_bad
    print(f"bundle {len(data)} bytes: full verification {full * 1000:.1f} ms, "
          f"tampered copy rejected in {tampered * 1000:.2f} ms (mean of {n_bad})")


if __name__ == "__main__":
    asyncio.run(main())
