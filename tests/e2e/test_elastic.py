"""Past one machine (issue 23): ``torchrun`` elastic agents, as on two nodes - here two agents
on 127.0.0.1 with a c10d rendezvous, one Gloo process each. They train one run whose folder
only rank 0 writes, every rank checks that it holds the same data split and checkpoint, and a
worker killed mid-run makes the agents restart the group, which goes on from the last
checkpoint (not from scratch) to the weights of a run never interrupted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import ROOT

pytestmark = [pytest.mark.skipif(not torch.distributed.is_available(),
                                 reason="this PyTorch has no torch.distributed"),
              pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="finds the worker processes in /proc")]

EPOCHS = 12


def _args(out: Path) -> list[str]:
    return ["train", "--data", "sample:digits", "--model", "mlp", "--hidden", "64,32",
            "--epochs", str(EPOCHS), "--batch-size", "32", "--seed", "3", "--early-stopping",
            "0", "--refit", "off", "--no-yardstick", "--schedule", "cosine", "--out", str(out)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def rendezvous():
    """The rendezvous store, on a port of its own for the whole module. On a cluster it is
    the first node's agent; here a process of its own, as a stable endpoint is: whichever
    agent hosted it would take it down when it ended first, and the other agent's last
    word with the store would then fail."""
    port = _free_port()
    code = ("import sys, time; from torch.distributed import TCPStore; "
            "s = TCPStore('127.0.0.1', int(sys.argv[1]), is_master=True, "
            "wait_for_workers=False, multi_tenant=True); time.sleep(900)")
    store = subprocess.Popen([sys.executable, "-c", code, str(port)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield port
    store.kill()
    store.wait()


def _agents(out: Path, restarts: int, port: int) -> list[subprocess.Popen]:
    """Two elastic agents joining one rendezvous, as two nodes' would."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1:2",
           "--nproc-per-node=1", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
           # last_call_timeout: a group with the minimum (one node) forms only after waiting
           # this long for the other; a slow machine must not make a one-process round
           f"--rdzv-id=traindesk-{out.name}", "--rdzv-conf=is_host=false,last_call_timeout=90",
           f"--max-restarts={restarts}", "--monitor-interval=0.2", str(ROOT / "main.py"),
           *_args(out)]
    env = {**os.environ, "TRAINDESK_NO_YARDSTICK": "1", "OMP_NUM_THREADS": "1"}
    return [subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]


def _finish(agents: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    done = []
    for agent in agents:
        try:
            out, err = agent.communicate(timeout=240)
        except subprocess.TimeoutExpired:  # a hung group: end it, and say so
            for a in agents:
                a.kill()
            out, err = agent.communicate()
            err += "\n(the agent did not end within 240 s)"
        done.append((agent.returncode, out, err))
    return done


def _history(run: Path) -> list[dict]:
    path = run / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _children(pid: int) -> list[int]:
    """The processes *pid* started (its torchrun workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return x.keys() == y.keys() and all(torch.allclose(x[k], y[k], atol=1e-6) for k in x)


@pytest.fixture(scope="module")
def whole(tmp_path_factory, rendezvous) -> Path:
    """A run of the two agents never interrupted."""
    out = tmp_path_factory.mktemp("elastic") / "whole"
    done = _finish(_agents(out, restarts=0, port=rendezvous))
    assert all(code == 0 for code, _, _ in done), [err[-2000:] for _, _, err in done]
    return out


def test_two_elastic_agents_train_one_run_that_rank_0_writes(whole):
    info = json.loads((whole / "run.json").read_text())
    assert info["status"] == "finished" and info["processes"] == 2
    agreed = info["ranks_agree"]  # every rank held the same data, split and (no) checkpoint
    assert agreed["data"] and agreed["data_split"] and agreed["checkpoint"] == ""
    assert [h["epoch"] for h in _history(whole)] == list(range(1, EPOCHS + 1))
    assert not list(whole.parent.glob("*.tmp*"))  # nothing half-written beside it


def test_a_killed_worker_restarts_the_group_from_the_last_checkpoint(whole, tmp_path,
                                                                     rendezvous):
    run = tmp_path / "run"
    agents = _agents(run, restarts=3, port=rendezvous)
    deadline = time.monotonic() + 180
    while len(_history(run)) < 3 and time.monotonic() < deadline:
        assert all(a.poll() is None for a in agents), _finish(agents)
        time.sleep(0.02)
    workers = _children(agents[1].pid)
    assert workers, "the second agent has no worker to kill"
    done_when_killed = len(_history(run))
    os.kill(workers[0], signal.SIGKILL)
    done = _finish(agents)
    for i, (_, _, err) in enumerate(done):  # kept beside the run, to read when it fails
        (tmp_path / f"agent{i}.log").write_text(err)
    assert all(code == 0 for code, _, _ in done), [err[-3000:] for _, _, err in done]
    history = _history(run)
    assert [h["epoch"] for h in history] == list(range(1, EPOCHS + 1))  # no epoch twice
    said = "".join(err for _, _, err in done)
    resumed = [int(line.split("after epoch ")[1].split()[0]) for line in said.splitlines()
               if "Resuming" in line and "after epoch" in line]
    assert resumed and resumed[0] >= done_when_killed - 1  # at most one epoch lost
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["ranks_agree"]["checkpoint"]
    assert _same_weights(run, whole)
