"""Who may do what: API key roles and the permissions each one carries."""

from __future__ import annotations

from enum import StrEnum

from domain.models import Model

KEY_NAME_MAX = 100  # api_keys.name holds this many characters


def key_name_problem(name: str) -> str | None:
    """Why `name` cannot name an API key (it is the actor in every audit row), or None."""
    if not name.strip():
        return "give the key holder's name (a person, a warehouse, a channel)"
    if len(name) > KEY_NAME_MAX:
        return f"at most {KEY_NAME_MAX} characters (got {len(name)})"
    return None


class Role(StrEnum):
    INTEGRATION = "integration"  # channels, payment provider, warehouse, carriers
    OPERATOR = "operator"  # people running the shop: everything
    VIEWER = "viewer"  # read only


class Permission(StrEnum):
    READ = "read"
    WRITE = "write"  # create orders, payments, shipments, tracking, stock counts
    OPERATE = "operate"  # interventions on orders
    MANAGE_WAREHOUSES = "manage warehouses"  # create and describe warehouses (where stock can be)
    MANAGE_SHOPS = "manage shops"  # connect shops and set their secrets


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
