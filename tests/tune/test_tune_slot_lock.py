"""The trial-slot lock excludes other holders (file lock for SQLite, advisory lock for PG)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from alphalab.tune import SlotLock


def _check_exclusion(url: str) -> None:
    first, second, other = SlotLock(url, "s/t"), SlotLock(url, "s/t"), SlotLock(url, "s/u")
    entered = threading.Event()

    def take() -> None:
        second.acquire()
        entered.set()
        second.release()

    try:
        first.acquire()
        other.acquire()  # another study's lock is independent
        other.release()
        thread = threading.Thread(target=take)
        thread.start()
        assert not entered.wait(0.5), "a second holder entered while the first held the lock"
        first.release()
        assert entered.wait(10), "the second holder never entered after the release"
        thread.join()
    finally:
        for lock in (first, second, other):
            lock.close()


def test_sqlite_slot_lock(tmp_path: Path) -> None:
    _check_exclusion(f"sqlite:///{tmp_path / 'studies.db'}")


@pytest.mark.postgres
def test_postgres_slot_lock(pg_url: str) -> None:
    _check_exclusion(pg_url)
