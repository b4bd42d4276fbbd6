"""Engines run compiled plans: DuckDB (default, embedded) and Spark (optional)."""
