# Shared shell helpers for recipes/<corpus>/run.sh (sourced, never run).
# Provides: option parsing (--stage N --stop-stage N --name value ...), log, stage, and the
# path to the project's python/asrkd. Recipes declare their options as shell variables with
# defaults BEFORE sourcing this file; any --name value on the command line overrides the
# variable `name` (dashes become underscores), as Kaldi's parse_options.sh does.

set -euo pipefail

ASRKD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "$ASRKD_ROOT/.venv/bin/python" ]; then
  PYTHON="$ASRKD_ROOT/.venv/bin/python"
else
  PYTHON="${PYTHON:-python3}"
fi
ASRKD=("$PYTHON" -m asrkd)
export PYTHONPATH="$ASRKD_ROOT${PYTHONPATH:+:$PYTHONPATH}"

while [ $# -gt 0 ]; do
  case "$1" in
    --*)
      name="${1#--}"; name="${name//-/_}"
      if ! declare -p "$name" >/dev/null 2>&1; then
        echo "$0: unknown option $1" >&2; exit 2
      fi
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 2; }
      printf -v "$name" '%s' "$2"; shift 2 ;;
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
