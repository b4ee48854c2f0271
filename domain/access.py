"""Who may do what: API key roles and the permissions each one carries."""

from __future__ import annotations

from enum import StrEnum

from domain.models import Model


class Role(StrEnum):
    INTEGRATION = "integration"  # channels, payment provider, warehouse, carriers
    OPERATOR = "operator"  # people running the shop: everything
    VIEWER = "viewer"  # read only


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"  # create orders, payments, shipments, tracking, stock counts
    OPERATE = "operate"  # interventions on orders
    MANAGE_WAREHOUSES = "manage warehouses"  # create and describe warehouses (where stock can be)


# README's "Roles" paragraph says the same in words; tests/api/test_roles.py checks every route against it.
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.INTEGRATION: frozenset({Permission.READ, Permission.WRITE}),
    Role.OPERATOR: frozenset(Permission),
    Role.VIEWER: frozenset({Permission.READ}),
}


class Caller(Model):
    """The holder of the API key a request came with."""

    key_id: str
    name: str
    role: Role

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]
