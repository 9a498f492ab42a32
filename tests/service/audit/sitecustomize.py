"""Loaded into the app process by the path-confinement test (PYTHONPATH): logs every file the
process opens or lists, through Python's audit hooks, to $DCGAN_AUDIT_LOG."""
import os
import sys

_log_path = os.environ.get("DCGAN_AUDIT_LOG")
if _log_path:
    _log = open(_log_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 - for the process' life

    def _hook(event, args):
        if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.fsdecode(args[0])
            _log.write(f"{event}\t{os.path.abspath(path)}\n")

    sys.addaudithook(_hook)
