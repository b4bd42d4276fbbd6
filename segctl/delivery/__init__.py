"""Delivery: the outbox worker, retry policy, and one module per destination."""
