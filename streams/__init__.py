"""Faust app, agents, and the pure decisions they call."""
