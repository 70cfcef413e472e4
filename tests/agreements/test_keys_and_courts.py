"""Key material on disk (0600 under the key dir, regenerated never) and the court directory formats."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from mediation.agreements.courts import CourtDirectory, suggest_courts
from mediation.agreements.notary import Notary
from mediation.agreements.pki import DevPKI
from mediation.errors import InvalidInput, NotFound


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_private_keys_are_0600_and_stable(key_dir: Path, notary: Notary, courts: CourtDirectory) -> None:
    notary.mediator_key(42)
    secrets = [*key_dir.glob("pki/*.key.pem"), *key_dir.glob("courts/*.pem"), *key_dir.glob("mediators/*.pem")]
    assert len(secrets) >= 3 + 8 + 1
    assert all(_mode(p) == 0o600 for p in secrets)
    assert _mode(key_dir / "pki") == 0o700
    again = DevPKI.load_or_create(key_dir)
    assert again.seal.cert_der == notary.pki.seal.cert_der and again.tsa.cert_der == notary.pki.tsa.cert_der
    assert notary.mediator_key(42).public_key() == notary.mediator_key(42).public_key()
    assert CourtDirectory.load_or_create_dev(key_dir).courts == courts.courts


def test_directory_loads_from_json_and_toml(tmp_path: Path, courts: CourtDirectory) -> None:
    entries = [c.to_dict() for c in courts.courts.values()]
    (tmp_path / "c.json").write_text(json.dumps(entries, ensure_ascii=False), "utf-8")
    toml = "".join(
        "[[court]]\n" + "".join(f'{k} = "{v}"\n' for k, v in e.items()) for e in entries
    )
    (tmp_path / "c.toml").write_text(toml, "utf-8")
    for name in ("c.json", "c.toml"):
        d = CourtDirectory.from_file(tmp_path / name)
        assert d.courts == courts.courts
    with pytest.raises(NotFound):
        d.get("nowhere")
    bad = dict(entries[0], ruling_public_key="AAAA")
    (tmp_path / "bad.json").write_text(json.dumps([bad]), "utf-8")
    with pytest.raises(InvalidInput) as e:
        CourtDirectory.from_file(tmp_path / "bad.json")
    assert e.value.code == "invalid_court"


def test_venue_by_property_location_only_basic_courts(courts: CourtDirectory) -> None:
    out = suggest_courts(courts, referring_court_id=None, party_addresses=["甘肃省兰州市"],
                         property_location="青海省西宁市城中区南大街", center_address="")
    assert [(x.court_id, x.reasons) for x in out] == [
        ("court-chengzhong", ["标的物所在地 / where the disputed property is"])]
    assert suggest_courts(courts, referring_court_id=None, party_addresses=["西宁市"]) == []  # only a 中院 matches
