"""Pydantic models for everything that crosses a boundary: Kafka values, settings, sources."""
