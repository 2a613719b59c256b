#!/usr/bin/env bash
# bundle_smoke.sh DIST_DIR: prove a built bundle has every module and data file it needs by
# running the bundled executable headless: list samples, train one for two epochs, export ONNX
# (the export checks itself with onnxruntime), evaluate. Run by `make bundle-test`.
set -euo pipefail
dist=${1:?usage: bundle_smoke.sh dist/TrainDesk}
exe="$dist/TrainDesk"
[[ -x $exe ]] || exe="$dist/TrainDesk.exe"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TRAINDESK_HOME="$work/home"
echo "bundle size: $(du -sh "$dist" | cut -f1)"
start=$(date +%s.%N)
"$exe" samples | tee "$work/samples.txt"
echo "samples listed in $(echo "$(date +%s.%N) - $start" | bc) s"
grep -q '^digits' "$work/samples.txt"
"$exe" train --data sample:breast_cancer --epochs 2 --out "$work/run"
"$exe" evaluate "$work/run"
"$exe" export "$work/run" --format onnx --out "$work/model.onnx" | tee "$work/export.txt"
grep -q "identical predictions" "$work/export.txt"
test -s "$work/model.preprocessing.json"
echo "bundle-test: OK"
