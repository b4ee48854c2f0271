"""The GraphQL documents the Shopify client sends (Admin API 2025-07), kept apart from the logic."""

FULFILMENT_STATE = """
query FulfilmentState($id: ID!) {
  order(id: $id) {
    id
    fulfillments(first: 50) { id status trackingInfo(first: 10) { company number url } }
    fulfillmentOrders(first: 50) {
      nodes {
        id
        status
        lineItems(first: 100) { nodes { id remainingQuantity lineItem { id sku } } }
      }
    }
  }
}
"""

FULFILMENT_CREATE = """
mutation FulfilmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo(first: 10) { company number url } }
    userErrors { field message }
  }
}
"""

ORDER_CANCELLED_AT = """
query OrderCancelledAt($id: ID!) { order(id: $id) { id cancelledAt } }
"""

ORDER_CANCEL = """
mutation OrderCancel(
  $orderId: ID!, $reason: OrderCancelReason!, $restock: Boolean!, $notifyCustomer: Boolean,
  $refundMethod: OrderCancelRefundMethodInput!
) {
  orderCancel(
    orderId: $orderId, reason: $reason, restock: $restock, notifyCustomer: $notifyCustomer,
    refundMethod: $refundMethod
  ) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
"""

INVENTORY_LEVEL = """
query InventoryLevel($id: ID!, $location: ID!) {
  inventoryItem(id: $id) {
    inventoryLevel(locationId: $location) { quantities(names: ["available"]) { name quantity } }
  }
}
"""

INVENTORY_SET = """
mutation InventorySet($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { id reason }
    userErrors { field message code }
  }
}
"""

STOCK_BY_SKU = """
query StockBySku($query: String!) {
  productVariants(first: 2, query: $query) {
    nodes {
      sku
      inventoryItem {
        id
        inventoryLevels(first: 1) {
          nodes { location { id } quantities(names: ["available"]) { name quantity } }
        }
      }
    }
  }
}
"""
