"""Job files that take a run to a cluster: a SLURM ``sbatch`` script, Kubeflow training jobs
(PyTorchJob for the Training Operator, TrainJob for Kubeflow Trainer v2) and a plain torchrun
launch script (see docs/cluster.md).

Every file runs the same command, ``main.py train`` under torchrun's elastic agent (c10d
rendezvous, restarts), writing one run folder on a shared volume. Because the same command
started again goes on with the run in ``--out`` from its last checkpoint (and does nothing on a
finished one), a requeued or restarted job needs nothing special: SLURM's warning before the
time limit (``--signal=B:USR1@90``) is turned into a requeue and a SIGTERM, which saves the run.

Resources come from the run's own figures where there are some: a project's measured estimate
(:func:`ml.jobs.estimate.estimate_project`) or a run's epochs so far, with room to spare.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TrainDeskError
from ..runs.folder import RunFolder
from ..runs.project import Project
from ..system.fileio import atomic_write_text

TARGETS = ("slurm", "kubernetes", "torchrun")
#: The port of the c10d rendezvous on the first node.
RDZV_PORT = 29500
#: Restarts torchrun's agent makes of a failed group before it gives up.
MAX_RESTARTS = 3
#: A time limit is the estimate times this, and at least :data:`MIN_MINUTES`.
TIME_MARGIN, MIN_MINUTES = 2.0, 30
#: Memory asked for: the measured peak times this, and at least :data:`MIN_MEMORY_GB`.
MEMORY_MARGIN, MIN_MEMORY_GB = 2.0, 8


@dataclass
class ClusterPlan:
    """What a cluster job runs and asks for."""

    name: str
    #: ``main.py``'s arguments (``train ... --out RUN``).
    train_args: list[str]
    run_dir: str
    nodes: int = 1
    gpus_per_node: int = 1
    cpus_per_node: int = 8
    memory_gb: int = MIN_MEMORY_GB
    minutes: int = 60
    image: str = "traindesk:latest"
    #: Where the shared volume is mounted (run folder and data live under it).
    shared: str = ""
    #: Where TrainDesk is installed on the nodes (its main.py and .venv).
    app_dir: str = "/opt/traindesk"
    notes: list[str] = field(default_factory=list)
    #: A language-model run: one process (its fine-tuning is not data-parallel).
    single_process: bool = False

    @property
    def time_limit(self) -> str:
        return f"{self.minutes // 60:02d}:{self.minutes % 60:02d}:00"

    @property
    def procs_per_node(self) -> int:
        return max(1, self.gpus_per_node)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "run"


def plan_for(source: str | Path, *, run_dir: str = "", nodes: int = 1, gpus_per_node: int = 1,
             minutes: int | None = None, image: str = "", shared: str = "",
             app_dir: str = "", estimate: bool = True) -> ClusterPlan:
    """The plan for a project file (a new run in *run_dir*, default beside the project) or a
    run folder (gone on with from its checkpoint).

    Raises
    ------
    TrainDeskError
        *source* is neither, or a setting is out of range.
    """
    if not 1 <= nodes <= 10_000 or not 0 <= gpus_per_node <= 64:
        raise TrainDeskError("--nodes must be 1 or more and --gpus-per-node 0 to 64.")
    source = Path(source).expanduser().resolve()
    if RunFolder.is_run(source):
        plan = _plan_for_run(RunFolder.open(source))
    elif source.suffix == ".tdproj" and source.is_file():
        plan = _plan_for_project(Project.load(source), run_dir, estimate)
    else:
        raise TrainDeskError(f"{source} is neither a run folder nor a .tdproj project file.")
    plan.nodes, plan.gpus_per_node = int(nodes), int(gpus_per_node)
    if plan.single_process and (plan.nodes > 1 or plan.gpus_per_node > 1):
        plan.nodes, plan.gpus_per_node = 1, min(1, plan.gpus_per_node)
        plan.notes.append("a language model fine-tunes in one process: one node, one GPU")
    if minutes is not None:
        if not 1 <= minutes <= 60 * 24 * 365:
            raise TrainDeskError("--minutes must be 1 or more.")
        plan.minutes = int(minutes)
    plan.image = image or plan.image
    plan.app_dir = app_dir or plan.app_dir
    plan.shared = shared or str(Path(plan.run_dir).parent)
    return plan


def _plan_for_run(folder: RunFolder) -> ClusterPlan:
    history = folder.read_history()
    settings = folder.settings()
    epochs = int((settings.get("training") or settings.get("language_model") or {}
                  ).get("epochs") or len(history) or 1)
    per_epoch = max((float(h.get("epoch_seconds") or h.get("seconds") or 0.0)
                     for h in history[-1:]), default=0.0)
    left = max(0, epochs - len(history))
    minutes = max(MIN_MINUTES, math.ceil(TIME_MARGIN * per_epoch * max(left, 1) / 60))
    plan = ClusterPlan(name=f"traindesk-{_slug(folder.title)}",
                       train_args=["train", "--resume", str(folder.path), "--quiet"],
                       run_dir=str(folder.path), minutes=minutes)
    plan.notes.append(f"goes on with {folder.title}: {len(history)} of {epochs} epochs done")
    plan.single_process = folder.is_language_model
    return plan


def _plan_for_project(project: Project, run_dir: str, estimate: bool) -> ClusterPlan:
    out = Path(run_dir).expanduser().resolve() if run_dir else project.runs_dir() / "cluster"
    plan = ClusterPlan(name=f"traindesk-{_slug(project.name)}",
                       train_args=["train", str(project.path), "--out", str(out), "--quiet"],
                       run_dir=str(out))
    if project.kind == "language-model":
        lm = project.language_model
        plan.train_args = ["train", "--task", "causal-lm", "--backbone", lm.backbone,
                           "--data", lm.data, "--mode", lm.mode, "--epochs", str(lm.epochs),
                           "--lr", str(lm.learning_rate), "--batch-size", str(lm.batch_size),
                           "--max-length", str(lm.max_length), "--lora-rank",
                           str(lm.lora_rank), "--seed", str(lm.seed), "--out", str(out),
                           "--quiet"]
        plan.minutes, plan.single_process = 4 * 60, True
        plan.notes.append("a language model: time limit 4 h unless --minutes is given")
    elif estimate:
        from .estimate import estimate_project

        found = estimate_project(project)
        seconds = found.seconds_preparing + found.seconds_total + found.seconds_finishing
        plan.minutes = max(MIN_MINUTES, math.ceil(TIME_MARGIN * seconds / 60))
        if found.peak_memory_bytes:
            plan.memory_gb = max(MIN_MEMORY_GB, math.ceil(
                MEMORY_MARGIN * found.peak_memory_bytes / 1e9))
        plan.notes.append(f"measured here: about {seconds / 60:.1f} min on {found.device}, "
                          f"{found.memory_kind} peak {found.peak_memory_bytes or 0:,} bytes")
    return plan


# -- the files -----------------------------------------------------------------------------------
def _torchrun(plan: ClusterPlan, nnodes: str, endpoint: str, rdzv_id: str) -> str:
    args = " ".join(shlex.quote(a) for a in plan.train_args)
    return (f'"$PYTHON" -m torch.distributed.run --nnodes={nnodes} '
            f"--nproc-per-node={plan.procs_per_node} --rdzv-backend=c10d "
            f'--rdzv-endpoint="{endpoint}" --rdzv-id="{rdzv_id}" '
            f'--max-restarts={MAX_RESTARTS} "$TRAINDESK/main.py" {args}')


def sbatch_script(plan: ClusterPlan) -> str:
    """The SLURM batch script (one torchrun agent per node, the first node as rendezvous)."""
    gpus = f"#SBATCH --gpus-per-node={plan.gpus_per_node}\n" if plan.gpus_per_node else ""
    launch = _torchrun(plan, "$SLURM_JOB_NUM_NODES", f"$HEAD_NODE:{RDZV_PORT}",
                       "$SLURM_JOB_ID")
    return f"""#!/bin/bash
# TrainDesk: {plan.name} ({'; '.join(plan.notes) or 'a new run'}). Submit: sbatch train.sbatch
#SBATCH --job-name={plan.name}
#SBATCH --nodes={plan.nodes}
#SBATCH --ntasks-per-node=1
{gpus}#SBATCH --cpus-per-task={plan.cpus_per_node}
#SBATCH --mem={plan.memory_gb}G
#SBATCH --time={plan.time_limit}
#SBATCH --requeue
#SBATCH --signal=B:USR1@90
#SBATCH --output={plan.shared}/slurm-%x-%j.out
set -euo pipefail
TRAINDESK=${{TRAINDESK:-{plan.app_dir}}}
PYTHON=${{PYTHON:-$TRAINDESK/.venv/bin/python}}
export HF_HUB_OFFLINE=1
HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)

# 90 s before the time limit: requeue this job, then SIGTERM the run, which saves its last
# epoch; the requeued job runs the same command and goes on from there.
on_time_limit() {{
    echo "time limit near: requeueing $SLURM_JOB_ID and stopping the run"
    scontrol requeue "$SLURM_JOB_ID"
    kill -TERM "$STEP" 2>/dev/null || true
    wait "$STEP" || true
    exit 0
}}
trap on_time_limit USR1

srun --kill-on-bad-exit=1 {launch} &
STEP=$!
wait "$STEP"
"""


def torchrun_script(plan: ClusterPlan) -> str:
    """A launch script to start on every node by hand (or by any other scheduler)."""
    launch = _torchrun(plan, f"{plan.nodes}:{plan.nodes}", "$HEAD_NODE:$PORT", "$RUN_ID")
    return f"""#!/usr/bin/env bash
# TrainDesk: {plan.name}. Start this on each of the {plan.nodes} node(s) with
#   HEAD_NODE=<first node's address> ./launch.sh
# (the same command again goes on from the run's last checkpoint).
set -euo pipefail
: "${{HEAD_NODE:?set HEAD_NODE to the host name or address of the first node}}"
PORT=${{PORT:-{RDZV_PORT}}}
RUN_ID=${{RUN_ID:-{plan.name}}}
TRAINDESK=${{TRAINDESK:-{plan.app_dir}}}
PYTHON=${{PYTHON:-$TRAINDESK/.venv/bin/python}}
export HF_HUB_OFFLINE=1
exec {launch}
"""


def _container(plan: ClusterPlan, indent: int) -> str:
    pad = " " * indent
    command = json.dumps(["python", f"{plan.app_dir}/main.py", *plan.train_args])
    limits = [f'memory: "{plan.memory_gb}Gi"', f'cpu: "{plan.cpus_per_node}"']
    if plan.gpus_per_node:
        limits.append(f'nvidia.com/gpu: "{plan.gpus_per_node}"')
    limit_lines = "".join(f"{pad}      {line}\n" for line in limits)
    return (f"{pad}- name: pytorch\n{pad}  image: {json.dumps(plan.image)}\n"
            f"{pad}  command: {command}\n{pad}  env:\n{pad}    - name: HF_HUB_OFFLINE\n"
            f'{pad}      value: "1"\n{pad}  resources:\n{pad}    limits:\n{limit_lines}'
            f"{pad}  volumeMounts:\n{pad}    - name: shared\n"
            f"{pad}      mountPath: {json.dumps(plan.shared)}\n")


def _replica(plan: ClusterPlan, role: str, replicas: int) -> str:
    return (f"    {role}:\n      replicas: {replicas}\n      restartPolicy: OnFailure\n"
            f"      template:\n        spec:\n          containers:\n"
            + _container(plan, 12)
            + "          volumes:\n            - name: shared\n"
              "              persistentVolumeClaim:\n"
              "                claimName: traindesk-shared\n")


def pytorchjob_yaml(plan: ClusterPlan) -> str:
    """A Kubeflow Training Operator PyTorchJob (elastic, c10d), the run folder on the
    ``traindesk-shared`` persistent volume claim."""
    workers = _replica(plan, "Worker", plan.nodes - 1) if plan.nodes > 1 else ""
    return (f"# TrainDesk: {plan.name}. kubectl apply -f pytorchjob.yaml (the volume claim "
            f"traindesk-shared must hold {plan.shared})\n"
            f"apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata:\n  name: {plan.name}\n"
            f"spec:\n  elasticPolicy:\n    rdzvBackend: c10d\n    minReplicas: {plan.nodes}\n"
            f"    maxReplicas: {plan.nodes}\n    maxRestarts: {MAX_RESTARTS}\n"
            f"    nProcPerNode: {plan.procs_per_node}\n  pytorchReplicaSpecs:\n"
            + _replica(plan, "Master", 1) + workers)


def trainjob_yaml(plan: ClusterPlan) -> str:
    """A Kubeflow Trainer v2 TrainJob on the ``torch-distributed`` runtime."""
    return (f"# TrainDesk: {plan.name} for Kubeflow Trainer v2. kubectl apply -f trainjob.yaml\n"
            f"apiVersion: trainer.kubeflow.org/v1alpha1\nkind: TrainJob\nmetadata:\n"
            f"  name: {plan.name}\nspec:\n  runtimeRef:\n    name: torch-distributed\n"
            f"  trainer:\n    image: {json.dumps(plan.image)}\n"
            f"    command: {json.dumps(['python', f'{plan.app_dir}/main.py', *plan.train_args])}\n"
            f"    numNodes: {plan.nodes}\n    numProcPerNode: {plan.procs_per_node}\n"
            f"    resourcesPerNode:\n      limits:\n        memory: \"{plan.memory_gb}Gi\"\n"
            f"        cpu: \"{plan.cpus_per_node}\"\n"
            + (f"        nvidia.com/gpu: \"{plan.gpus_per_node}\"\n" if plan.gpus_per_node
               else "")
            + "  podSpecOverrides:\n    - targetJobs:\n        - name: node\n"
              "      volumes:\n        - name: shared\n          persistentVolumeClaim:\n"
              "            claimName: traindesk-shared\n      containers:\n"
              "        - name: node\n          volumeMounts:\n            - name: shared\n"
              f"              mountPath: {json.dumps(plan.shared)}\n")


def write_job_files(plan: ClusterPlan, target: str, out_dir: str | Path) -> list[Path]:
    """Write *target*'s files into *out_dir* (atomically each); returns their paths."""
    files = {"slurm": {"train.sbatch": sbatch_script},
             "torchrun": {"launch.sh": torchrun_script},
             "kubernetes": {"pytorchjob.yaml": pytorchjob_yaml,
                            "trainjob.yaml": trainjob_yaml}}.get(target)
    if files is None:
        raise TrainDeskError(f"Unknown target {target!r}; use one of {', '.join(TARGETS)}.")
    out_dir = Path(out_dir).expanduser()
    written = []
    for name, make in files.items():
        path = out_dir / name
        atomic_write_text(path, make(plan), error=TrainDeskError)
        if name.endswith((".sh", ".sbatch")):
            path.chmod(0o755)
        written.append(path)
    return written
