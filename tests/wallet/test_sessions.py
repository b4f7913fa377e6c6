"""wallet.sessions: session tokens kept per (API, address) until they expire, in a 0600 file written whole."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.wallet.conftest import FAST, PASSWORD, stray_files
from wallet import Wallet
from wallet.keystore import Keystore
from wallet.sessions import MARGIN, SessionCache

API = "http://127.0.0.1:8000"
ALICE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BOB = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def later(seconds: int) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


class TestSessionCache:
    def test_a_token_is_kept_per_api_and_address(self, wallet_dir: Path):
        cache = SessionCache.in_dir(wallet_dir)
        cache.put(API, ALICE, "adls_alice", later(3600))
        cache.put("https://api.example/", ALICE, "adls_elsewhere", later(3600))
        assert SessionCache.in_dir(wallet_dir).get(API + "/", ALICE) == "adls_alice"  # another process, same file
        assert cache.get("https://api.example", ALICE) == "adls_elsewhere"
        assert cache.get(API, BOB) is None

    def test_a_token_about_to_expire_is_not_given_out(self, wallet_dir: Path):
        cache = SessionCache.in_dir(wallet_dir)
        cache.put(API, ALICE, "adls_alice", later(int(MARGIN.total_seconds()) - 5))
        assert cache.get(API, ALICE) is None

    def test_expired_tokens_are_dropped_when_another_is_written(self, wallet_dir: Path):
        cache = SessionCache.in_dir(wallet_dir)
        cache.put(API, ALICE, "adls_alice", later(-1))
        cache.put(API, BOB, "adls_bob", later(3600))
        assert "adls_alice" not in cache.path.read_text()

    def test_drop_forgets_one_token(self, wallet_dir: Path):
        cache = SessionCache.in_dir(wallet_dir)
        cache.put(API, ALICE, "adls_alice", later(3600))
        cache.put(API, BOB, "adls_bob", later(3600))
        cache.drop(API, ALICE)
        assert (cache.get(API, ALICE), cache.get(API, BOB)) == (None, "adls_bob")

    def test_the_file_is_private_and_written_whole(self, wallet_dir: Path):
        cache = SessionCache.in_dir(wallet_dir)
        cache.put(API, ALICE, "adls_alice", later(3600))
        assert stat.S_IMODE(os.stat(cache.path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(wallet_dir).st_mode) == 0o700
        assert stray_files(wallet_dir) == ["sessions.json"]  # no temporary file left behind

    def test_a_damaged_file_counts_as_empty_and_is_rewritten(self, wallet_dir: Path):
        wallet_dir.mkdir(parents=True)
        cache = SessionCache.in_dir(wallet_dir)
        for damaged in ("{not json", "[]", '{"version": 1, "sessions": {"x": {"token": 1}}}'):
            cache.path.write_text(damaged)
            assert cache.get(API, ALICE) is None
        cache.put(API, ALICE, "adls_alice", later(3600))
        assert cache.get(API, ALICE) == "adls_alice"

    def test_the_keystore_listing_ignores_the_file(self, wallet_dir: Path):
        wallet = Wallet.create(PASSWORD, wallet_dir, iterations=FAST)
        SessionCache.in_dir(wallet_dir).put(API, wallet.address, "adls_token", later(3600))
        assert [entry.address for entry in Keystore(wallet_dir).list()] == [wallet.address]
