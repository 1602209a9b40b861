"""Connector commands: sync, status, records, audit, replay, init (added by the engine)."""
