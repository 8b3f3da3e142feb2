"""The queue engine: pure logic, no I/O. Commands in, events out."""
