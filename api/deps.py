"""FastAPI dependencies as Annotated aliases: what routes receive from the app's lifespan."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator, StringConstraints
from starlette.concurrency import run_in_threadpool

from api.errors import Forbidden, Unauthorized
from api.guard import CALLER_SCOPE_KEY
from app.channel_events import Inbound as InboundEvents
from app.inventory import StockCounts as StockCountCases
from app.orders import OrderGateway
from app.restock import Restocker as RestockSweeps
from app.shops import Shops as ShopCases
from domain.access import Caller, Permission
from domain.identifiers import SKU_PATTERN, WAREHOUSE_CODE_PATTERN, normalise_identifier
from services.audit import AuditService
from services.auth import ApiKeyService
from services.inventory import InventoryService
from services.orders import OrderStore
from services.warehouses import WarehouseService

_bearer = HTTPBearer(auto_error=False, description="an orderflow API key: `Authorization: Bearer of_...`")


def _from_state(name: str) -> Any:
    """A dependency that hands a route what the lifespan put on app.state under `name`."""

    def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    return Depends(get)


async def _caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    checked = request.scope.get(CALLER_SCOPE_KEY)  # ApiKeyGuard verified the key before the body was read
    if isinstance(checked, Caller):
        return checked
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    keys: ApiKeyService = request.app.state.keys
    caller = await run_in_threadpool(keys.verify, credentials.credentials)
    if caller is None:
        raise Unauthorized()
    return caller


def _require(permission: Permission) -> object:
    async def check(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
        if not caller.may(permission):
            raise Forbidden(caller.role, permission)
        return caller

    return Depends(check)


# Order ids are ours ("ord_" + hex): anything else cannot name an order, so it is a 422, not a lookup.
ORDER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"  # orders.order_id holds 40 characters
OrderIdText = Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
OrderId = Annotated[str, Path(pattern=ORDER_ID_PATTERN, description="the order_id the API returned")]
# domain.identifiers' codes as URL parameters, normalised the same way as in bodies ({sku:path}: a SKU
# may hold "/"), so a fullwidth or NFD code in a path is the same code as in a JSON body.
_Normalised = BeforeValidator(normalise_identifier)
WarehouseCodePath = Annotated[str, _Normalised, Path(pattern=WAREHOUSE_CODE_PATTERN)]
SkuPath = Annotated[str, _Normalised, Path(pattern=SKU_PATTERN)]
SkuQuery = Annotated[str | None, _Normalised, Query(pattern=SKU_PATTERN)]
# A caller's name for one command: a repeat with the same key (after a 503 or a lost answer) gets the
# first command's answer instead of running it again.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[A-Za-z0-9_.:-]{1,100}$",
        description="optional; a repeat of this command with the same key answers like the first",
    ),
]

Gateway = Annotated[OrderGateway, _from_state("gateway")]
Store = Annotated[OrderStore, _from_state("store")]
Inventory = Annotated[InventoryService, _from_state("inventory")]
Audit = Annotated[AuditService, _from_state("audit")]
Warehouses = Annotated[WarehouseService, _from_state("warehouses")]
Restocker = Annotated[RestockSweeps, _from_state("restocker")]
StockCounts = Annotated[StockCountCases, _from_state("stock_counts")]
Shops = Annotated[ShopCases, _from_state("shops")]
Inbound = Annotated[InboundEvents, _from_state("inbound")]
Reader = Annotated[Caller, _require(Permission.READ)]
Writer = Annotated[Caller, _require(Permission.WRITE)]
Operator = Annotated[Caller, _require(Permission.OPERATE)]
WarehouseManager = Annotated[Caller, _require(Permission.MANAGE_WAREHOUSES)]
ShopManager = Annotated[Caller, _require(Permission.MANAGE_SHOPS)]
