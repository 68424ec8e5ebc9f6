"""An API process settles before it serves: its long-lived objects frozen out of the garbage
collector's reach, including what the first request builds, and its collections timed."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gatherly.app import create_app
from gatherly.core import crypto, metrics, serving
from gatherly.core.config import Settings


@pytest.fixture(autouse=True)
def only_our_collections() -> Iterator[None]:
    """No automatic collection meanwhile: the counts below are of the tests' own."""
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    if was_enabled:
        gc.enable()


def _full_collections() -> float:
    metrics.record_gc_pauses()
    value = REGISTRY.get_sample_value("gatherly_gc_pause_seconds_count", {"generation": "2"})
    return value or 0.0


def test_settle_freezes_the_app_as_its_first_request_leaves_it(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'g.db'}", queue_path=str(tmp_path / "queue.db")
    )
    app = create_app(crypto.resolve(settings))
    try:
        serving.settle(app)
        assert gc.get_freeze_count() > 100_000
        # The next request builds nothing that lives on: the first one built it (the
        # middleware stack, the route tables), before the freeze. Without that request,
        # some 60,000 objects would stay for every full collection to walk.
        asyncio.run(serving._first_request(app))
        gc.collect()
        assert len(gc.get_objects(generation=2)) < 5_000
        before = _full_collections()
        gc.collect()
        assert _full_collections() == before + 1
        # Settling again (it collects once) installs no second callback: one observation
        # a collection.
        serving.settle(app)
        gc.collect()
        assert _full_collections() == before + 3
    finally:
        gc.unfreeze()
        gc.callbacks.remove(metrics._on_gc)


def test_a_collection_inside_a_metrics_update_does_not_wait_for_its_lock() -> None:
    # A collection can start at any allocation, inside prometheus_client's lock too (one
    # per process in multi-process mode). Here: the very lock the pause's own histogram
    # takes, held while collecting. Observing from the callback would never return.
    metrics.watch_gc()
    held = metrics.GC_PAUSE_SECONDS.labels("2")._sum._lock  # type: ignore[attr-defined]
    before = _full_collections()
    done = threading.Event()

    def collect_holding_the_lock() -> None:
        with held:
            gc.collect()
        done.set()

    try:
        worker = threading.Thread(target=collect_holding_the_lock, daemon=True)
        worker.start()
        worker.join(timeout=10)
        assert done.is_set()
        assert _full_collections() == before + 1  # noted, then observed after
    finally:
        gc.callbacks.remove(metrics._on_gc)
