"""The resident ID card reader (二代身份证阅读器): GA/T 467 codec, card records, serial driver, simulator.

Only :class:`~devices.idcard.records.ResidentRecord` leaves this package;
the full card holder stays in the kiosk process. See docs/idcard.md.
"""
