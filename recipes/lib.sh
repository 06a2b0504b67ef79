# Shared shell helpers for recipes/<corpus>/run.sh (sourced, never run).
# Provides: option parsing (--stage N --stop-stage N --name value ...), log, stage, the path to
# the project's python/asrkd, recipe settings from YAML (load_conf, conf_get) and a small pool of
# background jobs (pjob, pwait). Recipes declare their options as shell variables with defaults
# BEFORE sourcing this file; any --name value on the command line overrides the variable `name`
# (dashes become underscores), as Kaldi's parse_options.sh does.

set -euo pipefail

ASRKD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$ASRKD_ROOT/.venv/bin/python" ]; then
  PYTHON="$ASRKD_ROOT/.venv/bin/python"
else
  PYTHON="${PYTHON:-python3}"
fi
ASRKD=("$PYTHON" -m asrkd)
export PYTHONPATH="$ASRKD_ROOT${PYTHONPATH:+:$PYTHONPATH}"

# Settings every recipe has (its conf/recipe.yaml or the command line may set them; defaults here).
num_seeds=${num_seeds:-1}        # baselines and students trained per system (exp/{baseline,student}_s<k>, k=1..)
student_seed=${student_seed:-0}  # student_s<k> uses seed student_seed + k - 1 (baseline_s<k>: baseline_seed + k - 1)
transfer_copies=${transfer_copies:-0}  # > 0: baselines and students train on data/train_aug<N> (asrkd augment-feats)
teachers_on_copies=${teachers_on_copies:-false}  # true (with transfer_copies > 0): the teachers train on N copies of their own
max_unaligned=${max_unaligned:-0.05}  # alignment stops the recipe when a set loses more than this share of its utterances

CLI_SET=" "  # names given on the command line: load_conf leaves them alone
while [ $# -gt 0 ]; do
  case "$1" in
    --*)
      name="${1#--}"; name="${name//-/_}"
      if ! declare -p "$name" >/dev/null 2>&1; then
        echo "$0: unknown option $1" >&2; exit 2
      fi
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 2; }
      printf -v "$name" '%s' "$2"; CLI_SET+="$name "; shift 2 ;;
    *) echo "$0: unexpected argument $1" >&2; exit 2 ;;
  esac
done

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') [$(basename "$(pwd)")] $*" >&2; }

# stage N: true when stage N is inside [--stage, --stop-stage]; logs the stage name.
stage() {
  local n=$1; shift
  if [ "$n" -ge "$stage" ] && [ "$n" -le "$stop_stage" ]; then
    log "stage $n: $*"
    return 0
  fi
  return 1
}

asrkd() { "${ASRKD[@]}" "$@"; }

# conf_get FILE KEY: the value at a dotted KEY of a YAML file (lists space-separated).
conf_get() {
  "$PYTHON" -c 'import sys, yaml
v = yaml.safe_load(open(sys.argv[1], encoding="utf-8")) or {}
for k in sys.argv[2].split("."):
    if not isinstance(v, dict) or k not in v:
        sys.exit(f"{sys.argv[1]}: no key {sys.argv[2]}")
    v = v[k]
print(" ".join(map(str, v)) if isinstance(v, list) else v)' "$1" "$2"
}

# load_conf FILE: set the recipe's variables from a flat YAML mapping (lists space-separated).
# Every key must be a variable the recipe declared; the command line wins over the file.
load_conf() {
  local key value
  while IFS='=' read -r key value; do
    declare -p "$key" >/dev/null 2>&1 || { echo "$0: $1: unknown setting $key" >&2; exit 2; }
    case "$CLI_SET" in *" $key "*) ;; *) printf -v "$key" '%s' "$value" ;; esac
  done < <("$PYTHON" -c 'import sys, yaml
for k, v in (yaml.safe_load(open(sys.argv[1], encoding="utf-8")) or {}).items():
    print(f"{k}=" + (" ".join(map(str, v)) if isinstance(v, list) else str(v)))' "$1")
}

# pjob LOG CMD...: run CMD in the background (stdout+stderr appended to LOG), at most $nj at once, each
# with $(nproc)/$nj threads; pwait: wait for them all, failing (with the failed logs' tails) if any failed.
PJOBS=(); PJOB_LOGS=()
pjob() {
  local logf=$1; shift
  while [ "$(jobs -rp | wc -l)" -ge "$nj" ]; do sleep 1; done
  mkdir -p "$(dirname "$logf")"
  local threads=$(( $(nproc) / nj )); [ "$threads" -ge 1 ] || threads=1
  OMP_NUM_THREADS=$threads NUMBA_NUM_THREADS=$threads "$@" >>"$logf" 2>&1 &
  PJOBS+=($!); PJOB_LOGS+=("$logf")
}
pwait() {
  local i rc=0
  for i in "${!PJOBS[@]}"; do
    if ! wait "${PJOBS[$i]}"; then
      rc=1; log "failed (see ${PJOB_LOGS[$i]}):"; tail -n 5 "${PJOB_LOGS[$i]}" >&2
    fi
  done
  PJOBS=(); PJOB_LOGS=()
  [ "$rc" -eq 0 ] || exit 1
}

# ---- the experiment's steps, on the recipe's layout (recipes/README.md): data/{train,dev,test}
# with labels/ali, data/lang, exp/ -------------------------------------------------------------

# new_data_dir DST CMD...: run CMD (which writes the data dir DST, e.g. combine-data or
# subset-data, both refusing an existing DST) unless DST is already there (written atomically).
new_data_dir() { local dst=$1; shift; [ -f "$dst/text" ] || "$@"; }

# done_in DIR MARKER...: true when a step already completed into DIR (all its markers exist).
# train/evaluate skip themselves too; checking here saves starting python for each on a rerun.
done_in() { local d=$1 m; shift; for m in "$@"; do [ -f "$d/$m" ] || return 1; done; }

# train_model CONF OUT [ARGS...]: asrkd train on data/train (dev: data/dev); ARGS are added
# last, so --feats/--seed/--soft-targets/--set given there win.
train_model() {
  local cfg=$1 out=$2; shift 2
  done_in "$out" .done && return 0
  asrkd train --config "$cfg" --feats data/train --labels data/train/labels/ali \
    --dev-feats data/dev --dev-labels data/dev/labels/ali --out "$out" "$@"
}

# kd_data: the data the baselines and the students train on, and the soft targets are cached
# on: data/train, or with transfer_copies > 0 data/train_aug<N> = train + N augmented copies
# (noise + a frequency mask, same frame labels; made by transfer_set). By default the teachers
# train on data/train: the copies are inputs they never saw, whose posteriors are not the
# memorised training labels, so the student sees more of the ensemble's behaviour; the
# baselines get the same copies with hard labels (the fair comparison). With
# teachers_on_copies=true the teachers train on as many copies of their own, drawn with another
# seed (data/train_aug<N>_teachers): as much augmented data as the baselines, yet the transfer
# set's copies stay unseen (teachers trained on the transfer set itself recovered only 63% / 51%
# of the gain on synth, dev / test: recipes/synth/README.md).
kd_data() { if [ "$transfer_copies" -gt 0 ]; then echo "data/train_aug$transfer_copies"; else echo data/train; fi; }
teachers_on_copies_on() { [ "$teachers_on_copies" = true ] && [ "$transfer_copies" -gt 0 ]; }
transfer_set() {
  [ "$transfer_copies" -gt 0 ] || return 0
  asrkd augment-feats data/train data/train/labels/ali "$(kd_data)" --copies "$transfer_copies" --seed 0
  if teachers_on_copies_on; then
    asrkd augment-feats data/train data/train/labels/ali "$(kd_data)_teachers" --copies "$transfer_copies" --seed 1
  fi
}
# teacher_data_args: train_model's data options for the teachers.
teacher_data_args() {
  if teachers_on_copies_on; then echo --feats "$(kd_data)_teachers" --labels "$(kd_data)_teachers/labels/ali"; fi
}

# cache_targets OUT T DATA MODEL...: the ensemble's combined posteriors at temperature T on DATA.
# Format and k: $cache_format, $cache_k (recipe.yaml).
cache_targets() {
  local out=$1 t=$2 data=$3 m; shift 3
  local models=(); for m in "$@"; do models+=(--model "$m"); done
  asrkd cache-targets "${models[@]}" --feats "$data" --T "$t" --format "$cache_format" --k "$cache_k" \
    --lang data/lang --nj "$nj" --out "$out"
}

# eval_frames OUT DATA MODEL...: frame accuracy of the model(s) on DATA (labels from
# data/<set>/labels/ali; a subset of train is scored with train's labels).
eval_frames() {
  local out=$1 data=$2 m; shift 2
  local models=(); for m in "$@"; do models+=(--model "$m"); done
  local labels=$data/labels/ali; [ -d "$labels" ] || labels=data/train/labels/ali
  done_in "$out" .frame_acc.done && return 0
  asrkd evaluate "${models[@]}" --feats "$data" --labels "$labels" --out "$out"
}

# evaluate_frames OUT MODEL...: frame accuracy (no decoding) of the model(s) on dev and test
# into OUT/eval_{dev,test}.
evaluate_frames() {
  local out=$1; shift
  eval_frames "$out/eval_dev" data/dev "$@"
  eval_frames "$out/eval_test" data/test "$@"
}

# evaluate_sets OUT MODEL...: frame accuracy and WER of the model(s) (several: the ensemble) on
# dev and test into OUT/eval_{dev,test}. LM weight and insertion penalty are swept on dev
# ($conf/decode.yaml gives the grid); test is decoded with dev's choice.
evaluate_sets() {
  local out=$1 m; shift
  local models=(); for m in "$@"; do models+=(--model "$m"); done
  local wer=(--lang data/lang --train-data data/train --prior-labels data/train/labels/ali)
  done_in "$out/eval_dev" .frame_acc.done .wer.done ||
    asrkd evaluate "${models[@]}" --feats data/dev --labels data/dev/labels/ali --out "$out/eval_dev" \
      "${wer[@]}" --dev data/dev --decode-config "$conf/decode.yaml"
  done_in "$out/eval_test" .frame_acc.done .wer.done ||
    asrkd evaluate "${models[@]}" --feats data/test --labels data/test/labels/ali --out "$out/eval_test" \
      "${wer[@]}" --decode-config "$out/eval_dev/decode_config.yaml"
}

# students CACHE DIR: $num_seeds students on the soft targets CACHE ($conf/student.yaml), into
# DIR/student_s<k> with seed student_seed + k - 1.
students() {
  local cache=$1 dir=$2 k
  for k in $(seq "$num_seeds"); do
    pjob "$dir/student_s$k/run.log" train_model "$conf/student.yaml" "$dir/student_s$k" --soft-targets "$cache" \
      --seed $((student_seed + k - 1)) --feats "$(kd_data)" --labels "$(kd_data)/labels/ali"
  done
  pwait
}

# other_cache_format TEACHER...: the students again on the other storage format of the same
# ensemble at the same T (dense <-> top-k with k = $cache_k), into exp/format/<dense|topk<k>>/
# (cache/, student_s<k>/ with frame accuracy on dev and test): what top-k costs in accuracy.
other_cache_format() {
  local fmt=dense name=dense k
  if [ "$cache_format" = dense ]; then fmt=topk; name=topk$cache_k; fi
  local dir=exp/format/$name
  cache_format=$fmt cache_targets "$dir/cache" "$T" "$(kd_data)" "$@"
  students "$dir/cache" "$dir"
  for k in $(seq "$num_seeds"); do pjob "$dir/student_s$k/eval.log" evaluate_frames "$dir/student_s$k" "$dir/student_s$k/final.pt"; done
  pwait
}

# temperature_sweep "T1 T2 ..." TEACHER...: per T a cache (exp/sweep/cache_T<T>) and a student
# (exp/sweep/T<T>, $conf/student.yaml at that T, seed student_seed), evaluated like the main systems.
temperature_sweep() {
  local temps=$1 t; shift
  for t in $temps; do cache_targets "exp/sweep/cache_T$t" "$t" "$(kd_data)" "$@"; done
  for t in $temps; do
    pjob "exp/sweep/T$t/run.log" train_model "$conf/student.yaml" "exp/sweep/T$t" \
      --soft-targets "exp/sweep/cache_T$t" --set "loss.temperature=$t" --seed "$student_seed" \
      --feats "$(kd_data)" --labels "$(kd_data)/labels/ali"
  done
  pwait
  for t in $temps; do pjob "exp/sweep/T$t/eval.log" evaluate_sets "exp/sweep/T$t" "exp/sweep/T$t/final.pt"; done
  pwait
}

# small_data_experiment FRACTION CACHE: the paper's section 6. Train on a seeded FRACTION of
# data/train with hard labels only (exp/small_data/hard, $conf/teacher.yaml, seed $baseline_seed)
# and with the full-data ensemble's soft targets CACHE (exp/small_data/soft, $conf/student.yaml,
# seed $student_seed); frame accuracy on that training subset and on test, and the first
# full-data baseline's on train (the one trained on data/train alone).
small_data_experiment() {
  local fraction=$1 cache=$2 sub=data/train_frac$1 m
  new_data_dir "$sub" asrkd subset-data --fraction "$fraction" data/train "$sub"
  asrkd compute-feats --config "$conf/fbank.yaml" --nj "$nj" "$sub"
  pjob exp/small_data/hard/run.log train_model "$conf/teacher.yaml" exp/small_data/hard --feats "$sub" \
    --seed "$baseline_seed"
  pjob exp/small_data/soft/run.log train_model "$conf/student.yaml" exp/small_data/soft --feats "$sub" \
    --soft-targets "$cache" --seed "$student_seed"
  pwait
  for m in hard soft; do
    eval_frames "exp/small_data/$m/eval_train" "$sub" "exp/small_data/$m/final.pt"
    eval_frames "exp/small_data/$m/eval_test" data/test "exp/small_data/$m/final.pt"
  done
  local full=exp/baseline_s1; [ "$transfer_copies" -gt 0 ] && full=exp/baseline_plain_s1
  eval_frames "$full/eval_train" data/train "$full/final.pt"
}
