"""Durable state: the queue's event log in SQLite."""
