"""The ``opswatch`` command line: a thin face over :mod:`core.api` (the console itself is in ``tui``)."""
