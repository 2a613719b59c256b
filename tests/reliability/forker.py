"""A warm process that forks workers on request, so fault tests can kill many of them cheaply.

Starting ``python main.py`` costs seconds (importing torch); killing twenty of them at random
moments would cost minutes. The forker imports TrainDesk once, then forks a child per request:
the child runs a headless command (``ml.cli.main``) or a named function and exits; the test
kills it whenever it likes with SIGKILL, exactly as a crash or the OOM killer would. Linux and
macOS only (``os.fork``). Nothing in the forker itself uses a thread before forking.

Protocol: one JSON object per line on stdin, one JSON reply per line on stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_SERVER = r"""
import importlib, json, os, sys
sys.path.insert(0, os.getcwd())
import ml.cli, ml.jobs.training, ml.runs.folder  # noqa: E401 - the warm-up
reply = sys.stdout
for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "spawn":
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)
            fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            code = 70
            try:
                if "argv" in req:
                    code = ml.cli.main(req["argv"])
                else:
                    module, name = req["call"].split(":")
                    getattr(importlib.import_module(module), name)(*req.get("args", []))
                    code = 0
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        reply.write(json.dumps({"pid": pid}) + "\n")
    elif req["op"] == "wait":
        _, status = os.waitpid(req["pid"], 0)
        code = os.waitstatus_to_exitcode(status)
        reply.write(json.dumps({"code": code}) + "\n")
    elif req["op"] == "quit":
        break
    reply.flush()
"""


class Forker:
    """Start the warm process; :meth:`spawn` workers, :meth:`kill` and :meth:`wait` them."""

    def __init__(self, env: dict | None = None):
        full_env = dict(os.environ, **(env or {}))
        full_env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER], cwd=ROOT, env=full_env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def _ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the forker died")
        return json.loads(line)

    def spawn(self, log: Path, argv: list[str] | None = None, call: str | None = None,
              args: list | None = None) -> int:
        """Start a child running ``main.py ARGV`` (as ``ml.cli.main``) or ``module:function``
        with *args*; its output goes to *log*. Returns its pid."""
        request = {"op": "spawn", "log": str(log)}
        if argv is not None:
            request["argv"] = [str(a) for a in argv]
        else:
            request["call"] = call
            request["args"] = list(args or [])
        return self._ask(request)["pid"]

    def wait(self, pid: int) -> int:
        """The child's exit code (negative: the signal that ended it)."""
        return self._ask({"op": "wait", "pid": pid})["code"]

    def kill(self, pid: int) -> int:
        """SIGKILL the child (and anything it started) and reap it."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return self.wait(pid)

    def run(self, log: Path, argv: list[str]) -> int:
        """Run a child to its end and return its exit code."""
        return self.wait(self.spawn(log, argv))

    def close(self) -> None:
        try:
            self._ask({"op": "quit"})
        except (RuntimeError, BrokenPipeError, ValueError):
            pass
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.proc.wait(30)
