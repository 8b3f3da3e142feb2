"""The hall manager's dashboard: live board, charts, ratings, devices, alerts and the daily report.

A Starlette app (``dashboard.app``) served by uvicorn. It reads the hall's state from the MQTT
broker (retained queue snapshot, device statuses with their Last Will) and its history from the
hub's SQLite event log, read-only. See docs/dashboard.md.
"""
