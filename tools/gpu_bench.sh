#!/usr/bin/env bash
# The GPU measurements of issue 19 (item 3) in one go, against the official code on the same GPU:
#
#   OFFICIAL=/path/to/checkouts bash tools/gpu_bench.sh OUT_DIR
#
# OFFICIAL holds the official checkouts as eg3d/ (NVlabs/eg3d) and pi-GAN/ (marcoamonteiro/pi-GAN).
# Run from the repository root with gan3d's packages installed. It runs tools/bench.py --official-src
# --official-only (each method and batch size in its own child process, the two sides interleaved there):
#
#   1. inference, fp32: EG3D ffhq512 and pi-GAN celeba at batch 1 and 4;
#   2. inference, bf16 autocast: the same (the official side in its default precision both times:
#      EG3D's fp16 super-resolution blocks, pi-GAN in fp32);
#   3. training at batch 32, one method at a time (a failed run, e.g. out of memory, is repeated at
#      batch 16): seconds per kimg of gan3d's Trainer.train_step and of the official training step
#      (EG3D: training_loop.py's phases through StyleGAN2Loss; pi-GAN: train.py's step), cycle-averaged
#      over the lazy regularizers, gan3d in fp32, the official code in its default precision;
#
# then prints one table of all rows. OUT_DIR gets each run's JSON (infer_fp32.json, infer_bf16.json,
# train_METHOD_bBATCH.json), the tables it printed (.txt; progress lines go to stderr as it runs) and
# summary.json (all rows). --protocol quick: 1 warm-up and 3 timed calls per side, one warm-up step and
# one step of each kind per side; about 3 to 4 minutes on one H200.
#
# Environment overrides (defaults for the GPU run in brackets), e.g. for a smoke run on a CPU:
#   DEVICE [cuda]  BATCHES ["1 4"]  TRAIN_BATCH [32]  TRAIN_FALLBACK_BATCH [16; empty: none]
#   PRECISIONS ["fp32 bf16"]  PROTOCOL [quick]
#   METHODS ["eg3d pigan"]  PYTHON [python]  EXTRA: more tools/bench.py arguments (e.g. --set overrides)
set -euo pipefail

out=${1:?usage: OFFICIAL=/path/with/eg3d_and_pi-GAN bash tools/gpu_bench.sh OUT_DIR}
: "${OFFICIAL:?set OFFICIAL to the folder that holds the official checkouts eg3d/ and pi-GAN/}"
for repo in eg3d pi-GAN; do
    if [ ! -d "$OFFICIAL/$repo" ]; then
        echo "tools/gpu_bench.sh: $OFFICIAL/$repo is missing (OFFICIAL must hold eg3d/ and pi-GAN/)" >&2
        exit 2
    fi
done
if [ ! -f tools/bench.py ]; then
    echo "tools/gpu_bench.sh: run it from the repository root (tools/bench.py not found)" >&2
    exit 2
fi

DEVICE=${DEVICE:-cuda}
BATCHES=${BATCHES:-"1 4"}
TRAIN_BATCH=${TRAIN_BATCH:-32}
TRAIN_FALLBACK_BATCH=${TRAIN_FALLBACK_BATCH-16}
PRECISIONS=${PRECISIONS:-"fp32 bf16"}
PROTOCOL=${PROTOCOL:-quick}
METHODS=${METHODS:-"eg3d pigan"}
PYTHON=${PYTHON:-python}
EXTRA=${EXTRA:-}
mkdir -p "$out"

sources=()
for method in $METHODS; do
    case $method in
        eg3d) sources+=("eg3d=$OFFICIAL/eg3d") ;;
        pigan) sources+=("pigan=$OFFICIAL/pi-GAN") ;;
        *) echo "tools/gpu_bench.sh: no official checkout known for method $method (eg3d, pigan)" >&2; exit 2 ;;
    esac
done

start=$(date +%s)
status=0
# shellcheck disable=SC2086  # METHODS, BATCHES and EXTRA are word lists on purpose
common=(--method $METHODS --device "$DEVICE" --protocol "$PROTOCOL" --official-src "${sources[@]}" --official-only)
jsons=()
for precision in $PRECISIONS; do
    echo "== inference, $precision, batch $BATCHES" >&2
    # shellcheck disable=SC2086
    "$PYTHON" tools/bench.py "${common[@]}" --batch-size $BATCHES --precision "$precision" --no-train \
        --json "$out/infer_$precision.json" $EXTRA >"$out/infer_$precision.txt" || status=1
    jsons+=("$out/infer_$precision.json")
done
# Training, one method at a time: a method whose run fails at TRAIN_BATCH (EG3D 512 in fp32 needs ~18 GB
# per 4 images on gan3d's side, so 32 may not fit a 141 GB card) is run again at TRAIN_FALLBACK_BATCH.
for method in $METHODS; do
    source_arg=()
    for s in "${sources[@]}"; do [ "${s%%=*}" = "$method" ] && source_arg=("$s"); done
    trained=0
    for batch in "$TRAIN_BATCH" "$TRAIN_FALLBACK_BATCH"; do
        [ -n "$batch" ] || continue
        echo "== training, $method, fp32, batch $batch" >&2
        # shellcheck disable=SC2086
        if "$PYTHON" tools/bench.py --method "$method" --device "$DEVICE" --protocol "$PROTOCOL" \
                --official-src "${source_arg[@]}" --official-only --batch-size "$batch" --precision fp32 --train \
                --json "$out/train_${method}_b$batch.json" $EXTRA >"$out/train_${method}_b$batch.txt"; then
            jsons+=("$out/train_${method}_b$batch.json")
            trained=1
            break
        fi
        jsons+=("$out/train_${method}_b$batch.json")
        echo "tools/gpu_bench.sh: $method training at batch $batch failed (see $out/train_${method}_b$batch.txt)" >&2
    done
    [ "$trained" = 1 ] || status=1
done

echo "== all rows ($(($(date +%s) - start)) s)" >&2
"$PYTHON" - "$out/summary.json" "${jsons[@]}" <<'EOF'
import importlib.util
import json
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("gan3d_tools_bench", Path("tools/bench.py"))
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
reports = [json.loads(Path(p).read_text()) for p in sys.argv[2:] if Path(p).is_file()]
if not reports:
    sys.exit("tools/gpu_bench.sh: no results were written")
summary = {"machine": reports[0]["machine"], "config": reports[0]["config"],
           "commands": [r["command"] for r in reports], "results": [row for r in reports for row in r["results"]]}
Path(sys.argv[1]).write_text(json.dumps(summary, indent=2))
bench.print_table(summary)
EOF
exit $status
