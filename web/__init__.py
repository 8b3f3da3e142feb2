"""The phone page behind each ticket's QR code (``hall web``): where the ticket stands, then 好差评."""
