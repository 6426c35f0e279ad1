"""The ingest's error: a problem with the input that the user can fix."""


class IngestError(ValueError):
    """A problem with the input that the user can fix; the message names file, column and fix."""
