#!/usr/bin/env bash
# bundle_smoke.sh DIST_DIR: prove a built bundle has every module, library and data file it needs
# by running the bundled executable headless: list samples, train one for two epochs, evaluate,
# export ONNX (the export checks itself with onnxruntime), read Parquet and Excel files, train
# the two shipped pretrained backbones (and package one), fine-tune tiny language models, and
# start the GUI offscreen until it is ready to train. On Linux it also checks that every bundled
# shared library finds its dependencies. Run by `make bundle-test` from the repository root.
# PYTHON (default python3, with pandas, pyarrow, openpyxl, Pillow and transformers) only writes
# the Parquet, Excel, text and image inputs and the tiny language models.
set -euo pipefail
dist=${1:?usage: bundle_smoke.sh dist/TrainDesk}
python=${PYTHON:-python3}
exe="$dist/TrainDesk"
[[ -x $exe ]] || exe="$dist/TrainDesk.exe"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TRAINDESK_HOME="$work/home"
echo "bundle size: $(du -sh "$dist" | cut -f1)"

if [[ $(uname) == Linux ]]; then
  # A library dropped by build.spec that something still links against shows up here. The
  # desktop's own libraries (GTK, Wayland, X11, OpenGL) come from the user's system, as for every
  # Qt application: Qt's plugins for them load only where they exist. Each library is looked at
  # with its own folder on the search path: a wheel's vendored libraries (scipy.libs' gfortran
  # needs the libquadmath beside it) carry no RPATH and are found there because the library
  # that loads them has one.
  missing=$(find "$dist" -name '*.so*' -type f -print0 \
            | xargs -0 -I{} sh -c 'LD_LIBRARY_PATH="$(dirname "$1")" ldd "$1" 2>/dev/null' _ {} \
            | grep 'not found' \
            | grep -Ev 'lib(gtk|gdk|wayland|xkbcommon|EGL|GL|X|xcb|fontconfig|dbus)' \
            | sort -u || true)
  if [[ -n $missing ]]; then echo "unresolved libraries:"; echo "$missing"; exit 1; fi
  echo "every bundled library resolves"
fi

start=$(date +%s.%N)
"$exe" samples | tee "$work/samples.txt"
echo "samples listed in $(echo "$(date +%s.%N) - $start" | bc) s"
grep -q '^digits' "$work/samples.txt"
"$exe" train --data sample:breast_cancer --epochs 2 --out "$work/run"
# The classic yardstick ran as the bundle's hidden yardstick-child command (scikit-learn inside).
test -s "$work/run/yardstick.json"
"$exe" evaluate "$work/run" | tee "$work/evaluate.txt"
grep -q "A gradient-boosting model" "$work/evaluate.txt"
"$exe" export "$work/run" --format onnx --out "$work/model.onnx" | tee "$work/export.txt"
grep -q "identical predictions" "$work/export.txt"
test -s "$work/model.preprocessing.json"

# The readers that load optional libraries at run time (pyarrow, openpyxl).
"$python" - "$work" <<'EOF'
import sys
import numpy as np
import pandas as pd
rng = np.random.default_rng(0)
frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
frame["y"] = np.where(frame.a + frame.b > 0, "yes", "no")
frame.to_parquet(f"{sys.argv[1]}/table.parquet")
frame.to_excel(f"{sys.argv[1]}/table.xlsx", index=False)
EOF
"$exe" train --data "$work/table.parquet" --target y --epochs 1 --quiet --out "$work/run_pq"
"$exe" train --data "$work/table.xlsx" --target y --epochs 1 --quiet --out "$work/run_xlsx"

# Pretrained backbones (issue 20): the shipped weights, transformers, peft and tokenizers. A
# small text file trains MiniLM with LoRA and exports the package (its tokenizer.json beside
# model.onnx); a few images train an EfficientNet-Lite0 linear probe.
"$python" - "$work" <<'EOF'
import os
import sys
import numpy as np
import pandas as pd
from PIL import Image
rng = np.random.default_rng(0)
good, bad = ["great", "superb", "wonderful"], ["poor", "boring", "awful"]
rows = [(f"The film was {' and '.join(rng.choice(good if i % 2 else bad, 2))}, said viewer {i}.",
         "pos" if i % 2 else "neg") for i in range(60)]
pd.DataFrame(rows, columns=["review", "sentiment"]).to_csv(f"{sys.argv[1]}/reviews.csv",
                                                           index=False)
for label, channel in (("red", 0), ("blue", 2)):
    os.makedirs(f"{sys.argv[1]}/images/{label}", exist_ok=True)
    for i in range(6):
        pixels = rng.integers(0, 90, (48, 48, 3), dtype=np.uint8)
        pixels[..., channel] = 220
        Image.fromarray(pixels).save(f"{sys.argv[1]}/images/{label}/{i}.png")
EOF
"$exe" train --data "$work/reviews.csv" --target sentiment --backbone minilm --mode lora \
  --epochs 1 --quiet --out "$work/run_minilm"
"$exe" export "$work/run_minilm" --format package --out "$work/minilm_pkg" | tee "$work/pkg.txt"
grep -q "predict.py on" "$work/pkg.txt"
test -s "$work/minilm_pkg/tokenizer.json"
"$exe" train --data "$work/images" --backbone efficientnet_lite0 --mode probe --epochs 1 \
  --quiet --out "$work/run_effnet"
"$exe" evaluate "$work/run_effnet"

# Language-model fine-tuning (issue 22): tiny Llama- and GPT-2-style folders built from configs
# (tests/conftest.py's builder; the bundle must hold both architectures), LoRA and full runs, an
# answer, the merged export (checked on write) and the report with its PDF.
"$python" - "$work" <<'EOF'
import json
import sys
from pathlib import Path
sys.path.insert(0, ".")
from tests.conftest import make_tiny_causal_lm
work = Path(sys.argv[1])
make_tiny_causal_lm(work / "tiny-llama", "llama")
make_tiny_causal_lm(work / "tiny-gpt2", "gpt2")
pairs = [("Name a colour.", "Blue."), ("What is two plus two?", "Four.")]
(work / "chat.jsonl").write_text("".join(json.dumps({"messages": [
    {"role": "user", "content": q}, {"role": "assistant", "content": a}]}) + "\n"
    for q, a in pairs * 6), encoding="utf-8")
EOF
"$exe" train --task causal-lm --backbone "$work/tiny-llama" --data "$work/chat.jsonl" \
  --mode lora --epochs 1 --max-length 64 --quiet --out "$work/run_lm"
"$exe" generate "$work/run_lm" --prompt "Name a colour." --max-new-tokens 4 --temperature 0
"$exe" export "$work/run_lm" --format hf --out "$work/lm_merged"
test -s "$work/lm_merged/config.json"
"$exe" export "$work/run_lm" --format report --out "$work/lm_report.html"
test -s "$work/lm_report.pdf"
"$exe" train --task causal-lm --backbone "$work/tiny-gpt2" --data "$work/chat.jsonl" \
  --mode full --epochs 1 --max-length 64 --quiet --out "$work/run_gpt2"
grep -q '"perplexity_before"' "$work/run_gpt2/metrics.json"

# The GUI: Qt's platform plugins, the icons and the pages, up to "ready to train".
TRAINDESK_STARTUP_PROBE=1 QT_QPA_PLATFORM=offscreen "$exe" | tee "$work/gui.txt"
grep -q "startup-probe ready" "$work/gui.txt"
echo "bundle-test: OK"
