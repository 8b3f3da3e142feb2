"""The ticket printer at the kiosk: ESC/POS tickets in Chinese, status, failures, a virtual printer.

Modules, one responsibility each:

- ``codec``: the ESC/POS command subset a ticket uses, as values; bytes both ways (pure).
- ``status``: DLE EOT real-time status replies to :class:`PrinterStatus` and back (pure).
- ``layout``: :class:`TicketPrint` (what goes on paper) to ESC/POS bytes (pure).
- ``transport``: a printer URL (usb, serial, tcp, file) to an open connection.
- ``printer``: the :class:`TicketPrinter` interface and its ESC/POS driver.
- ``spooler``: the background print worker that never loses or doubles a ticket.
- ``simulator`` and ``render``: the virtual printer that answers over TCP and draws PNGs.
- ``cli``: ``hall printer test|status`` and ``hall sim printer``.
"""
