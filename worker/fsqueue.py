"""Embedded mode's queue: kombu's filesystem transport, with each message file read bounded.

kombu's own reader opens whatever file in the queue folder is named like a message: a FIFO
there blocks the worker's consumer for good (its heartbeat thread goes on, so it looks
healthy), and a huge file is read whole. Here a message is claimed by a rename inside the
broker folder (never a copy), opened without blocking, and read only if it is a regular file
of at most MAX_MESSAGE_BYTES holding a JSON object; anything else is removed with a warning
and the next file is tried.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
from pathlib import Path
from queue import Empty

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from model.fsutil import read_bounded

SCHEME = "dcgan-filesystem"
MAX_MESSAGE_BYTES = 1 << 20  # a wake-up message is about 2 KB
log = logging.getLogger(__name__)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


class Channel(filesystem.Channel):
    def _get(self, queue):
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(self.processed_folder, f"{name}.{secrets.token_hex(4)}")
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except OSError:
                continue  # another consumer took it first
            try:
                message = loads(bytes_to_str(read_bounded(Path(claimed), MAX_MESSAGE_BYTES)))
            except (OSError, ValueError, RecursionError) as exc:
                message = exc
            finally:
                _remove(claimed)
            if isinstance(message, dict):
                return message
            log.warning("dropped %s from the job queue: not a message (%s)", name,
                        message if isinstance(message, Exception) else type(message).__name__)
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES.setdefault(SCHEME, f"{__name__}:Transport")
