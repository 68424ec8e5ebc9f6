"""The jobs tests use the connected installation of the Teams tests."""

from tests.teams.conftest import connected, tenant, tenant_server

__all__ = ["connected", "tenant", "tenant_server"]
