"""hallkit: the software of a township or village government-service hall.

This package holds what every part of the hall shares and that needs no I/O
beyond files: configuration, the service catalogue, the queue engine, the
durable event store, privacy helpers, message catalogues and the ``hall``
command line.
"""

__version__ = "0.1.0"
