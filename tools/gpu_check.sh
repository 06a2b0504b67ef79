#!/usr/bin/env bash
# The GPU path end to end, on a machine with CUDA (after tools/setup.sh):
#   1. the tiny synth recipe with --device cuda (train, cache-targets and evaluate on the GPU),
#      stage 5 (the soft-target cache) timed on its own;
#   2. tests/test_ddp.py with nccl, one process per visible GPU;
#   3. the training benchmark (tools/bench.py --only train: the CPU step, as its keys say).
# Last line: one JSON object, the numbers and what each measured. Without CUDA it runs nothing
# and exits 2.
#   bash tools/gpu_check.sh [WORK_DIR]     # default: a fresh temporary directory
# (a WORK_DIR that already holds the cache would time stage 5 skipping itself: give a fresh one)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python; [ -x "$PY" ] || PY=python3

gpus=$("$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null || echo 0)
if [ "$gpus" -lt 1 ]; then
  echo "gpu_check: no CUDA GPU visible (torch.cuda.is_available() is False): nothing run" >&2
  exit 2
fi

work=${1:-$(mktemp -d /tmp/asrkd_gpu_check.XXXXXX)}
run=(bash recipes/synth/run.sh --conf recipes/synth/conf/tiny --work "$work" --device cuda)
log() { echo "$(date '+%H:%M:%S') gpu_check: $*" >&2; }

log "tiny synth recipe on cuda in $work (stages 0-4)"
"${run[@]}" --stop-stage 4
log "stage 5: the soft-target cache on cuda, timed"
t0=$(date +%s.%N)
"${run[@]}" --stage 5 --stop-stage 5
t1=$(date +%s.%N)
log "stages 6-10"
"${run[@]}" --stage 6

log "tests/test_ddp.py: nccl, $gpus process(es)"
ASRKD_TEST_DDP_DEVICE=cuda ASRKD_TEST_DDP_NPROC=$gpus "$PY" -m pytest -q tests/test_ddp.py >&2

log "tools/bench.py --only train"
bench=$("$PY" tools/bench.py --only train | tail -n 1)

"$PY" - "$work" "$t0" "$t1" "$gpus" "$bench" <<'EOF'
import json, sys
from pathlib import Path

from asrkd.softtargets.cache import SoftTargetCache

work, t0, t1, gpus, bench = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
exp = work / "exp"
caches = sorted(exp.glob("cache_T*"))
cache_frames = sum(SoftTargetCache(caches[0]).frame_counts().values())
last = json.loads((exp / "student_s1" / "metrics.json").read_text())["epochs"][-1]
print(json.dumps({
    "gpus": gpus,
    "train_frames_per_s": last["frames_per_s"],
    "cache_frames_per_s": cache_frames / (t1 - t0),
    "bench_train": json.loads(bench),
    "measured": {
        "train_frames_per_s": "exp/student_s1 of the tiny synth recipe on cuda, last epoch (the loop's own count)",
        "cache_frames_per_s": f"{caches[0].name}: {cache_frames} frames / wall time of recipe stage 5 on cuda "
                              "(asrkd start-up and teacher loading included)",
        "bench_train": "tools/bench.py --only train (the CPU training step benchmark, as its keys say)",
        "ddp": f"tests/test_ddp.py passed with nccl on {gpus} process(es)",
    },
}))
EOF
