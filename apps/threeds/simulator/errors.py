class Unexpected(AssertionError):
    """An answer the simulation did not expect (a wrong element, an HTTP error, nothing arrived)."""


class Unreachable(Unexpected):
    """The server could not be reached at all (connection refused, timeout)."""
