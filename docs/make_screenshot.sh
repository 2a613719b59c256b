#!/usr/bin/env bash
# Retake docs/screenshot-train.png: the Train panel mid-training on the digits sample, taken on a
# virtual screen with ../shared/tools/screenshot.sh (run by `make screenshot`).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
.venv/bin/python - "$tmp/demo.tdproj" <<'PY'
import sys
sys.path.insert(0, ".")
from ml.runs.project import DataConfig, ModelConfig, Project, TrainingConfig
Project(name="Digits demo", data=DataConfig(source="sample:digits"),
        model=ModelConfig(preset="cnn", conv_channels=[32, 64], hidden=[128], dropout=0.25),
        training=TrainingConfig(epochs=80, batch_size=32)).save(sys.argv[1])
PY
# A click on "3 Train" opens the step (and focuses the window: there is no window manager),
# Ctrl+Enter starts training; the shot is taken a few seconds in.
TRAINDESK_HOME="$tmp/home" ../shared/tools/screenshot.sh docs/screenshot-train.png -w 8 \
  -k "mousemove 70 169 click 1" -k "key ctrl+Return" -k "sleep 5" -- .venv/bin/python main.py "$tmp/demo.tdproj"
echo "wrote docs/screenshot-train.png"
