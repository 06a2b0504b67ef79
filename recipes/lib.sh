# Shared shell helpers for recipes/<corpus>/run.sh (sourced, never run): option parsing, log,
# stage, the project's python/asrkd, and a small pool of background jobs that runs the
# experiment's commands (run_plan). No experiment design and no completion checks live here:
# the commands come from `asrkd recipe-plan` (asrkd/experiment/plan.py) and each skips itself
# when its output is complete.
#
# Recipes declare their own options as shell variables with defaults BEFORE sourcing this file;
# any --name value on the command line overrides the variable `name` (dashes become underscores),
# as Kaldi's parse_options.sh does. Any other --name value is a setting of conf/recipe.yaml
# (--num-teachers 2): it is handed to asrkd recipe-conf / recipe-plan, which type-check it.

set -euo pipefail

# Options of every recipe (run.sh sets $recipe, its own options and path_options first).
stage=0
stop_stage=100
work=$recipe              # data/, exp/ (and the synth corpus/) are written here
conf=$recipe/conf         # step configs (*.yaml) and the recipe settings (recipe.yaml)
extra=false               # run the temperature sweep (7) and the small-data experiment (8)
recipe_set=()  # --set name=value for the recipe.yaml settings given on the command line
while [ $# -gt 0 ]; do
  case "$1" in
    --*)
      name="${1#--}"; name="${name//-/_}"
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 2; }
      if declare -p "$name" >/dev/null 2>&1; then
        printf -v "$name" '%s' "$2"
      else
        recipe_set+=(--set "$name=$2")
      fi
      shift 2 ;;
    *) echo "$0: unexpected argument $1" >&2; exit 2 ;;
  esac
done

ASRKD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$ASRKD_ROOT/.venv/bin/python" ]; then
  PYTHON="$ASRKD_ROOT/.venv/bin/python"
else
  PYTHON="${PYTHON:-python3}"
fi
export PYTHONPATH="$ASRKD_ROOT${PYTHONPATH:+:$PYTHONPATH}"

asrkd() { "$PYTHON" -m asrkd "$@"; }

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') [$(basename "$(pwd)")] $*" >&2; }

# stage N DESCRIPTION: true when stage N is inside [--stage, --stop-stage]; logs the stage.
stage() {
  local n=$1; shift
  if [ "$n" -ge "$stage" ] && [ "$n" -le "$stop_stage" ]; then
    log "stage $n: $*"
    return 0
  fi
  return 1
}

# load_settings FILE: the recipe settings of FILE (conf/recipe.yaml) as shell variables, the
# command line's winning (asrkd recipe-conf: typed; an unknown name is an error listing them).
load_settings() {
  local settings
  settings=$(asrkd recipe-conf "$1" "${recipe_set[@]}")
  eval "$settings"
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

# run_plan STEP...: the commands of each STEP of $plan (`asrkd recipe-plan`: shell-quoted lines
# "STEP begin", then "STEP run ARGV...", "STEP pool LOG ARGV..." or "STEP wait"), in order: `run`
# in the foreground, `pool` through pjob, `wait` (and the end of the step) waits for the pool.
run_plan() {
  local step line found; local -a lines words
  mapfile -t lines <<< "$plan"
  for step in "$@"; do
    found=false
    for line in "${lines[@]}"; do
      eval "words=($line)"
      [ "${words[0]}" = "$step" ] || continue
      case "${words[1]}" in
        begin) found=true ;;
        run) log "${words[*]:2}"; "${words[@]:2}" ;;
        pool) pjob "${words[2]}" "${words[@]:3}"; log "${words[*]:3} (background, output in ${words[2]})" ;;
        wait) pwait ;;
      esac
    done
    [ "$found" = true ] || { log "no step $step in the plan"; exit 2; }
    pwait
  done
}

# Enter the experiment: paths given relative to the caller made absolute (the steps run inside
# $work), the recipe settings of $conf/recipe.yaml loaded as shell variables (nj, num_teachers, ...).
conf=$(cd "$conf" && pwd)
for _p in "${path_options[@]}"; do
  [ -z "${!_p}" ] || printf -v "$_p" '%s' "$(realpath -m "${!_p}")"
done
load_settings "$conf/recipe.yaml"
mkdir -p "$work" && cd "$work"
