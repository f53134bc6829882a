"""The harness's own error: one line that names the problem and the fix."""


class NcapError(Exception):
    """Bad input or an unobtainable figure, explained in one line for the user."""
