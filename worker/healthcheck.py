"""Container health check: this host's worker wrote its heartbeat recently.

    python -m worker.healthcheck     # exit 0 healthy, 1 not
"""
from __future__ import annotations

import json
import os
import sys
import time

from worker.settings import get_service_settings

STALE_AFTER = 60.0  # seconds; the worker writes every 10


def main() -> int:
    folder = get_service_settings().heartbeat_dir
    host = os.uname().nodename
    for path in folder.glob(f"{host}-*.json") if folder.is_dir() else []:
        try:
            if time.time() - json.loads(path.read_text())["seen_at"] < STALE_AFTER:
                return 0
        except (OSError, ValueError, KeyError):
            continue
    print(f"no fresh heartbeat from a worker on {host} in {folder}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
