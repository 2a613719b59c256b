"""``main.py cluster`` (issue 23): the SLURM script, the Kubeflow jobs and the torchrun launch
script parse, carry what a platform engineer expects, and the launch script really trains."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
from tests.conftest import ROOT, run_cli


@pytest.fixture
def project(tmp_path):
    return Project(name="Iris on the cluster", data=DataConfig(source="sample:iris"),
                   model=ModelConfig(preset="mlp_small", hidden=[8]),
                   training=TrainingConfig(epochs=2, seed=0, refit="off", yardstick=False)
                   ).save(tmp_path / "iris.tdproj")


def test_slurm_script_requeues_on_the_time_limit_warning_and_uses_the_estimate(project, tmp_path):
    done = run_cli("cluster", str(project), "--target", "slurm", "--out", str(tmp_path / "job"),
                   "--nodes", "2", "--gpus-per-node", "4")
    assert done.returncode == 0, done.stderr
    script = tmp_path / "job" / "train.sbatch"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    for expected in ("#SBATCH --nodes=2", "#SBATCH --gpus-per-node=4", "#SBATCH --requeue",
                     "#SBATCH --signal=B:USR1@90", "#SBATCH --time=00:30:00", "srun ",
                     "--nproc-per-node=4", "--rdzv-backend=c10d",
                     '--rdzv-endpoint="$HEAD_NODE:29500"', "scontrol requeue",
                     "trap on_time_limit USR1", f"train {project}"):
        assert expected in text, expected
    assert "measured here: about" in text  # the estimate was taken, not guessed
    assert os.access(script, os.X_OK)


def test_kubeflow_jobs_parse_with_the_fields_the_operators_require(project, tmp_path):
    done = run_cli("cluster", str(project), "--target", "kubernetes", "--out",
                   str(tmp_path / "k8s"), "--nodes", "3", "--image", "registry/traindesk:1",
                   "--shared", "/shared", "--no-estimate")
    assert done.returncode == 0, done.stderr
    job = yaml.safe_load((tmp_path / "k8s" / "pytorchjob.yaml").read_text())
    assert job["apiVersion"] == "kubeflow.org/v1" and job["kind"] == "PyTorchJob"
    assert job["spec"]["elasticPolicy"]["rdzvBackend"] == "c10d"
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 2
    for spec in replicas.values():
        pod = spec["template"]["spec"]
        (container,) = pod["containers"]
        assert container["name"] == "pytorch"  # the operator finds its container by name
        assert container["image"] == "registry/traindesk:1"
        assert container["command"][1:3] == ["/opt/traindesk/main.py", "train"]
        assert container["volumeMounts"][0]["mountPath"] == "/shared"
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "traindesk-shared"
        assert spec["restartPolicy"] == "OnFailure"
    v2 = yaml.safe_load((tmp_path / "k8s" / "trainjob.yaml").read_text())
    assert v2["apiVersion"] == "trainer.kubeflow.org/v1alpha1" and v2["kind"] == "TrainJob"
    assert v2["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert v2["spec"]["trainer"]["numNodes"] == 3
    assert v2["spec"]["trainer"]["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "1"


def test_the_torchrun_launch_script_trains_the_project_and_goes_on_when_started_again(
        project, tmp_path):
    done = run_cli("cluster", str(project), "--target", "torchrun", "--out",
                   str(tmp_path / "tr"), "--gpus-per-node", "0", "--run-dir",
                   str(tmp_path / "run"), "--no-estimate")
    assert done.returncode == 0, done.stderr
    script = tmp_path / "tr" / "launch.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    env = {**os.environ, "HEAD_NODE": "127.0.0.1", "PORT": "29533", "TRAINDESK": str(ROOT),
           "PYTHON": sys.executable, "TRAINDESK_NO_YARDSTICK": "1"}
    for _ in range(2):  # the second start: the run is finished, nothing to do
        proc = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
    assert "nothing to do" in proc.stdout
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_a_language_model_run_goes_to_one_process_and_bad_sources_are_refused(tmp_path):
    from ml.runs.folder import RunFolder

    run = RunFolder.claim(tmp_path / "lm")
    run.start_language_model(config={"data": {"source": "x.jsonl"}, "language_model": {
        "epochs": 3}}, split={"train": [0], "val": [1], "test": [2]},
        info={"status": "stopped", "name": "LoRA tiny"})
    done = run_cli("cluster", str(tmp_path / "lm"), "--target", "slurm", "--out",
                   str(tmp_path / "job"), "--nodes", "4", "--gpus-per-node", "8")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "job" / "train.sbatch").read_text()
    assert "#SBATCH --nodes=1" in text and "--nproc-per-node=1" in text
    assert f"train --resume {tmp_path / 'lm'}" in text
    bad = run_cli("cluster", str(tmp_path / "nothing"), "--target", "slurm", "--out",
                  str(tmp_path / "job2"))
    assert bad.returncode == 2 and "neither a run folder nor a .tdproj" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
