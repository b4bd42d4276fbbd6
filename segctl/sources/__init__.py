"""Data sources: formats, presets, nested properties, identities."""
