"""Quick reads (api/deps.py): reading one record or one page runs on the event loop, each
statement on its own (no BEGIN and COMMIT), through the same services and access checks as
every route; other routes still run in worker threads."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

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
        assert seen, url
        assert all(e.thread != WORKER and e.isolation_level == "AUTOCOMMIT" for e in seen), (
            url,
            seen,
        )
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


def test_a_quick_read_records_the_tokens_use(client: TestClient, db: Session, org: Org) -> None:
    tokens = select(ApiToken).where(ApiToken.user_id == org.users["marketer"].id)
    for token in db.scalars(tokens):
        token.last_used_at = None
    db.commit()
    url = f"{API}/contacts/{org.contacts['marketer']}"
    assert client.get(url, headers=org.headers["marketer"]).status_code == 200
    db.expire_all()
    assert [t.last_used_at is not None for t in db.scalars(tokens)] == [True]
