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

# pjob LOG CMD...: run CMD in the background (stdout+stderr to LOG), at most $nj at once, each
# with $(nproc)/$nj threads; pwait: wait for them all, failing (with the failed logs' tails) if any failed.
PJOBS=(); PJOB_LOGS=()
pjob() {
  local logf=$1; shift
  while [ "$(jobs -rp | wc -l)" -ge "$nj" ]; do sleep 1; done
  mkdir -p "$(dirname "$logf")"
  local threads=$(( $(nproc) / nj )); [ "$threads" -ge 1 ] || threads=1
  OMP_NUM_THREADS=$threads NUMBA_NUM_THREADS=$threads "$@" >"$logf" 2>&1 &
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
