"""Delivery: the outbox worker, retry policy, and one module per destination.

``model`` holds the shared words (Batch, Report, the Reachability and Push protocols);
``outbox`` queues a run's actions, ``queries`` holds every other query of the outbox and
holds tables, ``worker`` delivers what is due, ``audiences/`` reconciles audiences (stage,
plan, send, record) through the clients of ``platforms/``, and ``plan`` is ``run --dry-run``.
"""
