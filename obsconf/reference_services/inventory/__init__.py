"""Inventory service: stock in PostgreSQL, stock levels in MongoDB, reserves on `order.created`."""
