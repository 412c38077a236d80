"""User-facing errors: a stage prints their message on one line, no traceback."""


class EAEError(Exception):
    """An error caused by inputs (files, data, parameters), not by a bug."""
