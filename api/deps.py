"""FastAPI dependencies as Annotated aliases: what routes receive from the app's lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.gateway import OrderGateway
from services.inventory import InventoryService
from services.orders import OrderStore


def _gateway(request: Request) -> OrderGateway:
    gateway: OrderGateway = request.app.state.gateway
    return gateway


def _store(request: Request) -> OrderStore:
    store: OrderStore = request.app.state.store
    return store


def _inventory(request: Request) -> InventoryService:
    inventory: InventoryService = request.app.state.inventory
    return inventory


Gateway = Annotated[OrderGateway, Depends(_gateway)]
Store = Annotated[OrderStore, Depends(_store)]
Inventory = Annotated[InventoryService, Depends(_inventory)]
