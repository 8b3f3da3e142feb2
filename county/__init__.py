"""The county side of the uplink: ingest into PostgreSQL, reports, the device fleet."""
