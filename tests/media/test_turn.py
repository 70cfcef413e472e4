import base64
import hashlib
import hmac

import pytest

from media.turn import turn_credentials

pytestmark = pytest.mark.timeout(10)


def test_known_vector():
    # Computed independently: printf '1700003600:alice' | openssl dgst -sha1 -hmac 's3cret' -binary | base64
    creds = turn_credentials("s3cret", 3600, "alice", ["turn:turn.example:3478"], now=1_700_000_000)
    assert creds["username"] == "1700003600:alice"
    assert creds["credential"] == "YAFdW/YDZewZsR1QSgUk2IrfbRI="
    assert creds["urls"] == ["turn:turn.example:3478"] and creds["ttl"] == 3600


def test_matches_hmac_definition_and_rejects_bad_input():
    creds = turn_credentials(b"k", 60, "u1", [], now=100)
    expected = base64.b64encode(hmac.new(b"k", b"160:u1", hashlib.sha1).digest()).decode()
    assert creds["credential"] == expected
    with pytest.raises(ValueError):
        turn_credentials("k", 0, "u", [])
    with pytest.raises(ValueError):
        turn_credentials("k", 10, "a:b", [])
