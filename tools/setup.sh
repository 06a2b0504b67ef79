#!/usr/bin/env bash
# Set up asrkd on a fresh Debian machine (run as root, or with sudo available):
#   - the Debian packages the recipes need (sox, TTS engines and voices for the synthetic corpus),
#   - a virtual environment in .venv with asrkd installed editable, plus the dev extra (pytest).
# Idempotent: a second run only checks what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(sox libsox-fmt-all espeak-ng libespeak-ng1 flite festival festvox-kallpc16k festvox-kdlpc16k \
  festvox-us-slt-hts bible-kjv bible-kjv-text libsndfile1)
# gcc builds the training step's AMX GEMM (asrkd/kernels/amx_gemm.c): only where the CPU has AMX.
if grep -qw amx_tile /proc/cpuinfo 2>/dev/null; then APT_PACKAGES+=(gcc); fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating virtual environment .venv"
  "$PY" -m venv .venv
fi
# Reinstall also when the editable install points at another checkout (a copied or shared
# .venv): checked from / so that the current directory does not shadow the installed package.
repo=$(pwd)
installed_here() {
  (cd / && "$repo/.venv/bin/python" -c "import asrkd, sys; sys.exit(asrkd.__file__ != '$repo/asrkd/__init__.py')") 2>/dev/null
}
if ! .venv/bin/python -c "import asrkd, torch, torchaudio" 2>/dev/null || ! installed_here \
    || [ pyproject.toml -nt .venv/.asrkd-installed ]; then
  echo "setup: installing asrkd and its dependencies into .venv (torch is large; first run takes minutes)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[dev]"
  touch .venv/.asrkd-installed
fi
# Build the training step's AMX GEMM now rather than at the first training run. The CPU flags
# and the OS's permission are checked before any compiler runs: without AMX this prints
# "no AMX on this CPU: oneDNN GEMM" and builds nothing.
.venv/bin/python -c "from asrkd.kernels import amx_gemm; print('setup: AMX GEMM:', amx_gemm.status())"
echo "setup: done ($(.venv/bin/python -c 'import torch, torchaudio; print("torch", torch.__version__, "torchaudio", torchaudio.__version__)'))"
