"""Order service: orders in MongoDB; welcome order per `user.created`; publishes `order.created`."""
