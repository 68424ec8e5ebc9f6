"""The user bench/load.py drives with locust: a BU-level marketer paging contacts and reading
events through the API, one request per task, each user's requests a Poisson process (random
gaps at a given mean rate).

Not run on its own: bench/load.py writes the run's settings to a JSON file and names it in
``GATHERLY_LOAD_CONFIG`` (the bearer token, the contact and event ids the viewer may read,
requests per second per user, how many pages deep a list is followed, the request timeout and
where to write the samples). When the test stops, every request's start (epoch seconds),
client-side milliseconds, name and error (empty when it succeeded) go to that file, so load.py
computes exact percentiles over the window it chooses; a marker file beside it holds the
test's start time.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from locust import FastHttpUser, events, task

CONFIG: dict[str, Any] = json.loads(Path(os.environ["GATHERLY_LOAD_CONFIG"]).read_text())
API = "/api/v1"
SAMPLES: list[tuple[float, float, str, str]] = []  # (start, ms, name, error or "")


@events.test_start.add_listener
def _started(**_kw: Any) -> None:
    Path(CONFIG["samples"] + ".start").write_text(repr(time.time()))


@events.request.add_listener
def _record(name: str, response_time: float, exception: BaseException | None, **kw: Any) -> None:
    start = kw.get("start_time") or time.time() - response_time / 1000
    error = "" if exception is None else " ".join(str(exception).split())[:100] or "error"
    SAMPLES.append((start, response_time, name, error))


@events.test_stop.add_listener
def _stopped(**_kw: Any) -> None:
    path = Path(CONFIG["samples"])
    tmp = path.with_suffix(".part")
    with tmp.open("w") as out:
        for start, ms, name, error in SAMPLES:
            out.write(f"{start:.6f}\t{ms:.3f}\t{name}\t{error}\n")
    tmp.replace(path)  # whole or absent: load.py never reads half a file


def _why(status: int) -> str:
    """A failed request's error: its status, or 0 when no answer came (a timeout or a
    connection error)."""
    return "no answer in time (or the connection failed)" if status == 0 else f"HTTP {status}"


class Marketer(FastHttpUser):
    """One signed-in marketer: list pages (following the cursor), one contact, one event."""

    def wait_time(self) -> float:
        # Independent people: each user's requests a Poisson process (exponential gaps),
        # so the total arrives at random, not in step. constant_throughput kept the users
        # in phase — 200 requests in the same instant each second — and measured how long
        # a box takes to drain that burst, not its latency under 200 requests/s.
        return random.expovariate(CONFIG["per_user_rate"])

    # a request unanswered after this many seconds counts as an error: a stuck server shows
    network_timeout = connection_timeout = CONFIG["timeout"]

    def on_start(self) -> None:
        self.auth = {"Authorization": f"Bearer {CONFIG['token']}"}
        self.rng = random.Random()
        self.cursors: dict[str, tuple[str | None, int]] = {}  # list -> (cursor, page number)

    def _page(self, what: str) -> None:
        cursor, page = self.cursors.get(what, (None, 1))
        path = f"{API}/{what}?limit={CONFIG['page_size']}"
        if cursor is not None:
            path += f"&cursor={quote(cursor, safe='')}"
        name = f"GET /{what} page {'1' if page == 1 else '2+'}"
        nxt: str | None = None
        with self.client.get(path, headers=self.auth, name=name, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(_why(r.status_code))
            else:
                body = r.json()
                if len(body["items"]) == 0 and page == 1:
                    r.failure(f"no {what} readable")
                nxt = body["next_cursor"]
        # follow the cursor a few pages deep, then start again from the first page
        if nxt is None or page >= CONFIG["pages_deep"]:
            self.cursors[what] = (None, 1)
        else:
            self.cursors[what] = (nxt, page + 1)

    def _one(self, what: str, ids: list[int]) -> None:
        path = f"{API}/{what}/{self.rng.choice(ids)}"
        with self.client.get(
            path, headers=self.auth, name=f"GET /{what}/{{id}}", catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(_why(r.status_code))

    @task(CONFIG["weights"]["contacts page"])
    def contacts_page(self) -> None:
        self._page("contacts")

    @task(CONFIG["weights"]["contact"])
    def contact(self) -> None:
        self._one("contacts", CONFIG["contacts"])

    @task(CONFIG["weights"]["events page"])
    def events_page(self) -> None:
        self._page("events")

    @task(CONFIG["weights"]["event"])
    def event(self) -> None:
        self._one("events", CONFIG["events"])
