"""Quick reads (api/deps.py): reading one record or one page runs on the event loop, each
statement on its own (no BEGIN and COMMIT), through the same services and access checks as
every route; other routes still run in worker threads."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient
from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, sessionmaker

from gatherly.org.models import ApiToken
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error, statements

WORKER = "AnyIO worker thread"  # anyio names the threads FastAPI runs sync routes on


def test_reads_of_one_record_or_one_page_run_on_the_loop_each_statement_alone(
    client: TestClient, db: Session, org: Org
) -> None:
    event_id = f.event(db, org.users["marketer"]).id
    db.commit()
    headers = org.headers["marketer"]
    quick = [
        f"{API}/contacts",
        f"{API}/contacts/{org.contacts['marketer']}",
        f"{API}/leads?limit=2",
        f"{API}/leads/{org.leads['marketer']}",
        f"{API}/events",
        f"{API}/events/{event_id}",
    ]
    for url in quick:
        with statements(client) as seen:
            assert client.get(url, headers=headers).status_code == 200, url
        # The one write, the token's use (on the first request), goes to a worker thread.
        on_loop = [e for e in seen if not e.sql.startswith("UPDATE api_token")]
        assert on_loop, url
        brief = [(e.sql[:30], e.thread[:20], e.isolation_level) for e in seen]
        assert all(e.thread != WORKER for e in on_loop), (url, brief)
        assert all(e.thread == WORKER for e in seen if e not in on_loop), (url, brief)
        assert all(e.isolation_level == "AUTOCOMMIT" for e in seen), (url, brief)
    # A count over a whole table is not quick: it runs on a worker thread, in a transaction.
    with statements(client) as seen:
        assert client.get(f"{API}/contacts/count", headers=headers).status_code == 200
    assert seen
    assert all(e.thread == WORKER and e.isolation_level is None for e in seen), seen


def test_quick_reads_check_access_as_every_route_does(
    client: TestClient, db: Session, org: Org
) -> None:
    eu = org.headers["eu_marketer"]
    assert_error(client.get(f"{API}/contacts/{org.contacts['support']}", headers=eu), 404)
    assert_error(client.get(f"{API}/leads/{org.leads['marketer']}", headers=eu), 404)
    event_id = f.event(db, org.users["marketer"]).id
    db.commit()
    assert_error(client.get(f"{API}/events/{event_id}", headers=eu), 404)
    listed = client.get(f"{API}/events", headers=eu).json()["items"]
    assert event_id not in {e["id"] for e in listed}
    assert_error(client.get(f"{API}/contacts"), 401)


def _tokens_unused(db: Session, org: Org, name: str) -> Select[tuple[ApiToken]]:
    """Forget when ``name``'s tokens were last used (so the next request records it)."""
    tokens = select(ApiToken).where(ApiToken.user_id == org.users[name].id)
    for token in db.scalars(tokens):
        token.last_used_at = None
    db.commit()
    return tokens


def _used(db: Session, tokens: Select[tuple[ApiToken]]) -> list[bool]:
    db.expire_all()
    return [t.last_used_at is not None for t in db.scalars(tokens)]


def test_a_quick_read_records_the_tokens_use(client: TestClient, db: Session, org: Org) -> None:
    tokens = _tokens_unused(db, org, "marketer")
    url = f"{API}/contacts/{org.contacts['marketer']}"
    assert client.get(url, headers=org.headers["marketer"]).status_code == 200
    assert _used(db, tokens) == [True]


def test_a_tokens_use_is_kept_when_the_route_then_fails(
    client: TestClient, db: Session, org: Org
) -> None:
    # Loading the principal used to flush the use into the request's transaction, which the
    # failure then rolled back (and whose row lock the whole request held).
    tokens = _tokens_unused(db, org, "marketer")
    missing = client.patch(
        f"{API}/contacts/999999", json={"company": "x"}, headers=org.headers["marketer"]
    )
    assert_error(missing, 404)
    assert _used(db, tokens) == [True]


def test_a_quick_read_waiting_for_the_tokens_row_does_not_stall_its_process(
    client: TestClient, db: Session, org: Org, session_factory: sessionmaker[Session]
) -> None:
    # A lock on the token's row, as a request on one of this process's threads would hold
    # it until the event loop lets it commit: had the quick read waited for it on the loop,
    # neither would ever go on (nor would anything else in the process).
    tokens = _tokens_unused(db, org, "marketer")
    holder = session_factory()
    holder.execute(
        update(ApiToken)
        .where(ApiToken.id.in_(tokens.with_only_columns(ApiToken.id)))
        .values(name="held")
    )
    answers: dict[str, int] = {}

    def get(name: str, url: str, headers: dict[str, str]) -> None:
        answers[name] = client.get(url, headers=headers).status_code

    url = f"{API}/contacts/{org.contacts['marketer']}"
    read = threading.Thread(target=get, args=("read", url, org.headers["marketer"]))
    health = threading.Thread(target=get, args=("health", "/healthz", {}))
    try:
        read.start()
        time.sleep(0.5)  # the read is now waiting for the row
        health.start()
        health.join(timeout=5)
        assert answers == {"health": 200}
    finally:
        holder.rollback()
        holder.close()
        read.join(timeout=15)
        health.join(timeout=15)
    assert answers == {"health": 200, "read": 200}
    assert _used(db, tokens) == [True]
