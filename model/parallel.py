"""Work spread over the machine's cores in child processes: drawing synthetic faces and decoding
images are mostly Python (or hold the GIL between decoder calls), so threads use about one core.

Each child is a fresh `python -m model.parallel FUNCTION` that imports only the module of the
function it serves (numpy and Pillow, not torch) and answers one task per line on its stdin with
one result line on its stdout (JSON). Being a plain subprocess, it is started the same way from a
Celery pool process (daemonic, where `multiprocessing` refuses children), from a process holding
CUDA state (which a fork would copy half-way) and from a script without a `__main__` guard (which
multiprocessing's spawn would run again in every child).
"""
from __future__ import annotations

import importlib
import json
import os
import queue
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_PROJECT = str(Path(__file__).resolve().parents[1])


class ChildError(RuntimeError):
    """A child process failed a task (its traceback is the message) or died."""


def cpu_count() -> int:
    """Cores this process may run on (its affinity mask, which a container's limit sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Child:
    def __init__(self, function: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PROJECT, os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, "-m", "model.parallel", function], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, text=True, bufsize=1)

    def call(self, index: int, args: Sequence[Any]) -> Any:
        try:
            self.proc.stdin.write(json.dumps([index, list(args)]) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, ValueError, OSError):
            line = ""
        if not line:
            raise ChildError(f"a worker process ended (exit code {self.proc.poll()})")
        got, answer = json.loads(line)
        if "error" in answer:
            raise ChildError(answer["error"])
        return answer["result"]

    def close(self, grace: float | None) -> None:
        """End the child: it finishes the task it is on and exits, or is killed after `grace`
        seconds (None: however long it takes)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def map_in_processes(function: str, tasks: Sequence[Sequence[Any]], workers: int,
                     on_result: Callable[[Any, int], None], should_stop: Callable[[], bool] = lambda: False,
                     grace: float = 0.0) -> bool:
    """Call `function` ("package.module:name", importable without the caller's state) on each
    task's arguments in `workers` child processes, handing each result and its task's index to
    on_result(result, index) in this thread, in the order they finish. Arguments and results
    must be JSON. Returns False, with the children killed and the tasks not yet done dropped, as
    soon as should_stop() is true (it is asked every 0.2 s); a task that raises raises
    ChildError here, and an exception from on_result is raised as it is. When it ends early, a
    child may finish the task it is on for `grace` seconds, then it is killed."""
    pending = queue.SimpleQueue()
    for i, args in enumerate(tasks):
        pending.put((i, args))
    results: queue.Queue = queue.Queue()
    children = [_Child(function) for _ in range(max(1, min(workers, len(tasks))))]
    halt = threading.Event()

    def feed(child: _Child) -> None:
        while not halt.is_set():
            try:
                i, args = pending.get_nowait()
            except queue.Empty:
                return
            try:
                results.put((True, (child.call(i, args), i)))
            except BaseException as exc:
                results.put((False, exc))
                return

    threads = [threading.Thread(target=feed, args=(c,), daemon=True, name="process-feed") for c in children]
    for t in threads:
        t.start()
    done, stopped, error = 0, False, None
    try:
        while done < len(tasks):
            if should_stop():
                stopped = True
                break
            try:
                ok, value = results.get(timeout=0.2)
            except queue.Empty:
                continue
            if not ok:
                error = value
                break
            done += 1
            on_result(*value)
    finally:
        halt.set()
        finished = done == len(tasks)
        for c in children:
            c.close(None if finished else grace)
        for t in threads:
            t.join()
    if error is not None:
        raise error
    return not stopped


def _serve(function: str) -> None:
    """A child's loop: one JSON task per stdin line, one JSON answer per stdout line."""
    module, _, name = function.partition(":")
    fn = getattr(importlib.import_module(module), name)
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # anything the function prints must not break the protocol
    for line in sys.stdin:
        index, args = json.loads(line)
        try:
            answer = {"result": fn(*args)}
        except Exception:
            answer = {"error": traceback.format_exc()}
        answers.write(json.dumps([index, answer]) + "\n")


if __name__ == "__main__":
    _serve(sys.argv[1])
