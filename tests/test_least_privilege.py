"""The local stack grants no more than needed: PostgreSQL asks every connection for a password
and the services' role is no superuser; Prometheus' lifecycle API is off."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from obsconf.stack.backends import Stack
from obsconf.stack.components import PG_APP_USER, PG_USER
from obsconf.stack.local import LocalStack

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def local(session_stack: Stack) -> LocalStack:
    if not isinstance(session_stack, LocalStack):
        pytest.skip("checks the local backend's PostgreSQL and Prometheus")
    return session_stack


def test_postgres_asks_every_connection_for_a_password(local: LocalStack) -> None:
    port = urlsplit(local.endpoints.postgres).port
    for user in (PG_USER, PG_APP_USER):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"host=127.0.0.1 port={port} user={user} dbname=postgres").close()


def test_the_services_role_is_no_superuser(local: LocalStack) -> None:
    url = local.endpoints.postgres.replace("postgresql+psycopg://", "postgresql://")
    assert urlsplit(url).username == PG_APP_USER
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == (False, False)


def test_prometheus_lifecycle_api_is_off(local: LocalStack) -> None:
    answer = httpx.post(local.endpoints.prometheus + "/-/reload", timeout=5)
    assert answer.status_code == 403, answer.text
