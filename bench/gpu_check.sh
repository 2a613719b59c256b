#!/usr/bin/env bash
# gpu_check.sh [OUT_DIR]: everything TrainDesk does on a GPU, checked in one go on a machine
# with one CUDA GPU (issue 23), in at most 8 minutes:
#   1. the tests marked requires_cuda (skipped everywhere else);
#   2. bench/bench_gpu.py: AMP + device-resident data against the tutorial DataLoader loop
#      (target >= 3x) and against a plain AMP loop (target >= 0.97x), EfficientNet-Lite0
#      fine-tuning in images/s, and one-process NCCL DDP (same weights as without);
#   3. a run from the command line on the GPU, and its ONNX export checked.
# The figures land in OUT_DIR (default gpu_check_out/): gpu.txt (the card), requires_cuda.txt,
# gpu_check.json and run.txt. Record them in docs/benchmarks.md with the card's name.
# PYTHON (default .venv/bin/python, else python3) needs the packages of requirements*.txt.
set -uo pipefail
out=${1:-gpu_check_out}
mkdir -p "$out"
out=$(cd "$out" && pwd)  # TRAINDESK_HOME must not move with the working directory
py=${PYTHON:-}
[[ -n $py ]] || { [[ -x .venv/bin/python ]] && py=.venv/bin/python || py=python3; }
export HF_HUB_OFFLINE=1 QT_QPA_PLATFORM=offscreen PYTHONUNBUFFERED=1 TRAINDESK_HOME="$out/home"
if ! "$py" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA GPU is visible to $py (torch.cuda.is_available() is False); run it" \
       "on a machine with one." >&2
  exit 3
fi
began=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
failed=()

echo "== 1. tests marked requires_cuda"
timeout 150 "$py" -m pytest -q -m requires_cuda -p no:cacheprovider tests \
  >"$out/requires_cuda.txt" 2>&1 || failed+=("requires_cuda tests")
tail -3 "$out/requires_cuda.txt"

echo "== 2. speed against the references (bench/bench_gpu.py)"
timeout 200 "$py" bench/bench_gpu.py --out "$out/gpu_check.json" >"$out/bench_gpu.txt" 2>&1 \
  || failed+=("bench_gpu")
grep -A4 '"ratios"\|"images_per_second"\|"same_weights"\|"passed"' "$out/gpu_check.json" \
  2>/dev/null | head -30 || tail -20 "$out/bench_gpu.txt"

echo "== 3. main.py train on the GPU, and its ONNX export"
rm -rf "$out/home/run" "$out/home/model.onnx"  # a run left by an earlier check would be reused
{ timeout 60 "$py" main.py train --data sample:digits --model cnn --epochs 3 --device cuda \
    --no-yardstick --out "$out/home/run" \
  && timeout 40 "$py" main.py export "$out/home/run" --format onnx --out "$out/home/model.onnx"
} >"$out/run.txt" 2>&1 || failed+=("train and export")
grep -E "device|test:|identical" "$out/run.txt" | head -5

echo "gpu_check: $(( $(date +%s) - began )) s"
if (( ${#failed[@]} )); then
  echo "gpu_check: FAILED: ${failed[*]} (see $out/)" >&2
  exit 1
fi
echo "gpu_check: OK"
