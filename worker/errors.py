"""The errors of the job side, in one place so that any layer can catch them without importing
the machinery (Celery, the store) that raises them."""
from __future__ import annotations


class JobNotFound(KeyError):
    """No job with that id (or not a well-formed id at all)."""


class JobConflict(Exception):
    """The job's state does not allow what was asked; the message says which state it is in."""


class JobDamaged(Exception):
    """job.json exists but is not a valid record; the message says what is wrong with it."""


class StoreBusy(Exception):
    """A record stayed locked by another process for longer than we wait."""


class BrokerUnavailable(Exception):
    """The broker did not take the message (down, refusing, or not answering); nothing was queued."""
