"""A hand-written bf16 GEMM on Intel AMX with fp32 accumulation (``amx_gemm.c``, called via ctypes).

torch on CPU has no bf16 x bf16 -> fp32-accumulated matmul other than oneDNN's, and oneDNN's rate
falls with K on this machine (2048 x 2560 output, 2 cores: 2.8 TFLOP/s at K = 1040, ~2.0 at
K = 2560). This kernel computes C (M, N) bf16 = A (M, K) bf16 @ B with the whole K accumulated in
fp32 AMX tiles and one rounding to bf16 (nearest even) after an optional bias and ReLU: the values
of torch's bf16 matmul up to the order of the fp32 additions.

Measured here (2 cores, issue 5): on the 2560-wide forward and input-gradient shapes it runs at
~2.1-2.3 TFLOP/s against oneDNN's ~2.0-2.2 alone, and inside the training step those matmuls take
~160-175 ms per step instead of ~185-215 ms, so :mod:`asrkd.kernels.fast_dnn` uses it for them,
and for the weight gradient of the 2000-class layer (2560 x 2048 x 2000: ~9.5 ms in the step
against oneDNN's ~12-13.5, whose rate drops when N is not a multiple of 64). It is no faster than
oneDNN on the 1040-input layer or on the other weight gradients, which stay with oneDNN. The AMX unit itself does ~3.0 TFLOP/s per core with tiles in registers and ~2.5 with tile
loads from L1: a GEMM is held back by streaming its tiles from L2/L3, not by the arithmetic.

The C file is compiled with the system C compiler at first use into a cache directory
(``$ASRKD_CACHE_DIR`` or ``~/.cache/asrkd``), keyed by the source's hash. :func:`available` is
False (and nothing else here should be called) when the CPU or OS lacks AMX, the compiler is
missing or the build fails; ``ASRKD_AMX=0`` turns it off. The CPU flags and the OS's permission
are checked first, without a compiler: on a CPU without AMX (e.g. AMD EPYC) the answer costs a
read of ``/proc/cpuinfo`` and nothing is logged above debug level. :func:`status` says why in
one line (``tools/setup.sh`` prints it).

:func:`dgrad_relu_backward` is the step's input gradient with the ReLU backward of the layer below
done in the GEMM's epilogue (the values of the GEMM followed by
:func:`asrkd.kernels.bf16_kernels.relu_backward_t`, bit for bit, without writing and rereading the
gradient; hinton2015, 2 threads, per 2048 x 2560 x 2560 call with operands out of cache:
~13.7-14 ms against ~16 for the two).

Layouts of the DNN step (weights ``w: (in, out)`` as :class:`asrkd.models.dnn.DNN` stores them):
forward ``matmul(x, w, bias=b, relu=True)``; input gradient ``matmul(dz, w, b_transposed=True)``
(``dz @ w^T``); weight gradient ``matmul(h_t, dz)`` with ``h_t: (in, N)`` the layer input
transposed. A torch ``Linear`` weight ``(out, in)`` is ``matmul(x, weight, b_transposed=True)``.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("asrkd.kernels.amx_gemm")

_SOURCE = Path(__file__).with_name("amx_gemm.c")
# Explicit ISA flags (not -march=native) so that a cached build states what it needs; available()
# checks the same features in /proc/cpuinfo.
_CFLAGS = ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mamx-tile", "-mamx-bf16",
           "-fPIC", "-shared", "-pthread", "-fopenmp"]
_CPU_FLAGS = ("avx512f", "avx512bw", "avx512vl", "amx_tile", "amx_bf16")


def _cache_dir() -> Path:
    root = os.environ.get("ASRKD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "asrkd")
    return Path(root)


def _cpu_has_amx() -> bool:
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return all(f in flags for f in _CPU_FLAGS)
    return False


_SYS_ARCH_PRCTL = 158  # x86_64 syscall number
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18


def _os_permits_amx() -> bool:
    """Asks Linux (>= 5.16) for the 8 KiB AMX tile state, as the library will (once per process;
    torch's oneDNN may have asked already, asking again is harmless). False: the kernel is too
    old or refuses, so building the library would be wasted."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        args = (ctypes.c_long(_SYS_ARCH_PRCTL), ctypes.c_long(_ARCH_REQ_XCOMP_PERM), ctypes.c_long(_XFEATURE_XTILEDATA))
        return int(libc.syscall(*args)) == 0
    except (OSError, AttributeError):
        return False


def build(out_dir: Path | None = None) -> Path:
    """Compiles ``amx_gemm.c`` (if not already built) and returns the shared library's path.

    Raises RuntimeError with the compiler's output when the build fails.
    """
    src = _SOURCE.read_bytes()
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise RuntimeError("no C compiler (gcc/cc) found")
    key = hashlib.sha256(src + " ".join([cc, *_CFLAGS]).encode()).hexdigest()[:16]
    out_dir = out_dir or _cache_dir()
    lib = out_dir / f"amx_gemm-{key}.so"
    if lib.exists():
        return lib
    out_dir.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: concurrent first uses (DDP ranks) never load a half-written file.
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out_dir)
    os.close(fd)
    try:
        res = subprocess.run([cc, *_CFLAGS, str(_SOURCE), "-o", tmp], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"{cc} failed on {_SOURCE.name}: {res.stderr.strip()[-2000:]}")
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    for stale in out_dir.glob("amx_gemm-*.so"):  # builds of earlier versions of the source
        if stale != lib:
            stale.unlink(missing_ok=True)
    return lib


# Why the library is not loaded, in the words :func:`status` prints.
OFF, NO_CPU, NO_OS, BUILD_FAILED = ("turned off (ASRKD_AMX=0)", "no AMX on this CPU", "the OS does not grant AMX",
                                    "the build failed")


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[Any, str]:
    """(the loaded library with its signatures, ""), or (None, why not). The checks that need no
    compiler come first: a CPU or OS without AMX never runs one."""
    if os.environ.get("ASRKD_AMX", "1") == "0":
        return None, OFF
    if not _cpu_has_amx():
        log.debug("AMX GEMM not used: %s (the step uses oneDNN)", NO_CPU)
        return None, NO_CPU
    if not _os_permits_amx():
        log.info("AMX GEMM not used: the CPU has AMX but the OS refused ARCH_REQ_XCOMP_PERM (XTILEDATA; "
                 "Linux >= 5.16 needed); the step uses oneDNN")
        return None, NO_OS
    try:
        lib = ctypes.CDLL(str(build()))
    except (OSError, RuntimeError) as e:
        log.warning("AMX GEMM unavailable (build failed; the step uses oneDNN): %s", e)
        return None, BUILD_FAILED
    lib.amx_request_perm.restype = ctypes.c_int
    if lib.amx_request_perm() != 0:  # granted above; a refusal now would be the OS changing its mind
        log.warning("AMX GEMM unavailable: the kernel refused ARCH_REQ_XCOMP_PERM (XTILEDATA)")
        return None, NO_OS
    vp, lg, it = ctypes.c_void_p, ctypes.c_long, ctypes.c_int
    lib.amx_gemm_bf16.argtypes = [vp, lg, vp, lg, it, vp, lg, lg, lg, lg, vp, it, it]
    lib.amx_gemm_bf16.restype = ctypes.c_int
    lib.amx_dgrad_relu_bf16.argtypes = [vp, lg, vp, lg, it, vp, lg, lg, lg, lg, vp, lg, ctypes.c_float, vp, vp, lg,
                                        it]
    lib.amx_dgrad_relu_bf16.restype = ctypes.c_int
    lib.amx_set_block_cols.argtypes = [it]
    lib.amx_set_block_cols.restype = None
    return lib, ""


def _lib() -> Any:
    """The loaded library, AMX permission granted; None when unavailable."""
    return _probe()[0]


def available() -> bool:
    """Whether :func:`matmul` can run here (AMX CPU and OS support, and the build succeeded)."""
    return _lib() is not None


def status() -> str:
    """One line for people: "built", or why not and that oneDNN does the GEMMs instead."""
    lib, why = _probe()
    return "built" if lib is not None else f"{why}: oneDNN GEMM"


def _need_lib() -> Any:
    lib = _lib()
    assert lib is not None, "AMX GEMM unavailable: check available() first"
    return lib


def set_block_cols(cols: int) -> None:
    """Tuning knob: columns of B packed per block (rounded down to a multiple of 32; default 192)."""
    _need_lib().amx_set_block_cols(cols)


def _check_rows(t: torch.Tensor, name: str) -> None:
    assert t.dtype == torch.bfloat16 and t.dim() == 2, (name, t.dtype, tuple(t.shape))
    assert t.stride(1) == 1 and t.stride(0) >= t.shape[1], (name, t.stride())


def _gemm_shape(a: torch.Tensor, b: torch.Tensor, b_transposed: bool) -> tuple[int, int, int]:
    """(M, N, K) of ``a @ B`` (B = b, or b^T when ``b_transposed``), both operands checked."""
    _check_rows(a, "a")
    _check_rows(b, "b")
    m, k = a.shape
    n = b.shape[0] if b_transposed else b.shape[1]
    assert (b.shape[1] if b_transposed else b.shape[0]) == k, (tuple(a.shape), tuple(b.shape), b_transposed)
    assert m > 0 and n > 0 and k > 0, (m, n, k)
    return m, n, k


def _check_rc(rc: int) -> None:
    if rc != 0:
        raise MemoryError("AMX GEMM: scratch allocation failed")


def matmul(a: torch.Tensor, b: torch.Tensor, *, b_transposed: bool = False, bias: torch.Tensor | None = None,
           relu: bool = False, out: torch.Tensor | None = None, threads: int | None = None) -> torch.Tensor:
    """``relu(a @ B + bias)`` in bf16 with fp32 accumulation; returns ``out``.

    a: (M, K) bf16, rows contiguous (any row stride); b: (K, N) bf16, or (N, K) when
    ``b_transposed`` (then B = b^T); bias: (N,) bf16 or None; out: (M, N) bf16, rows contiguous
    (allocated when None). ``threads``: default ``torch.get_num_threads()``; the result does not
    depend on it (every output element is summed by one thread in a fixed order).
    """
    lib = _need_lib()
    m, n, k = _gemm_shape(a, b, b_transposed)
    if bias is not None:
        assert bias.dtype == torch.bfloat16 and bias.shape == (n,) and bias.is_contiguous(), bias.shape
    if out is None:
        out = torch.empty(m, n, dtype=torch.bfloat16)
    _check_rows(out, "out")
    assert out.shape == (m, n), (tuple(out.shape), (m, n))
    rc = lib.amx_gemm_bf16(a.data_ptr(), a.stride(0), b.data_ptr(), b.stride(0), int(b_transposed),
                           out.data_ptr(), out.stride(0), m, n, k,
                           bias.data_ptr() if bias is not None else None, int(relu),
                           threads or torch.get_num_threads())
    _check_rc(rc)
    return out


def dgrad_relu_backward(a: torch.Tensor, b: torch.Tensor, h: torch.Tensor, *, b_transposed: bool = False,
                        scale: float = 1.0, out: torch.Tensor, db: torch.Tensor, h_t: torch.Tensor | None = None,
                        threads: int | None = None) -> torch.Tensor:
    """A layer's input gradient fused with the ReLU backward of the layer below; returns ``out``.

    g = a @ B as :func:`matmul` computes it (rounded to bf16), then, with g never written to memory,
    the values of :func:`asrkd.kernels.bf16_kernels.relu_backward_t` bit for bit: ``out`` = dz =
    g * [h > 0] (rounded to bf16 again after multiplying by ``scale``, the dropout 1 / (1 - p), when
    it is not 1), ``db`` = the column sums of dz (fp32, summed in 64-row blocks in order, as
    there), and ``h_t`` = h^T when given.

    a: (M, K) bf16; b: (K, N) bf16, or (N, K) when ``b_transposed``; h: (M, N) bf16, the
    layer's output (after ReLU and dropout); out: (M, N) bf16, must not overlap h; db: (N,) fp32
    contiguous; h_t: (N, M) bf16, rows contiguous (any row stride). All rows contiguous.
    The result does not depend on ``threads`` (each column is computed by one thread in a fixed order).
    """
    lib = _need_lib()
    m, n, k = _gemm_shape(a, b, b_transposed)
    _check_rows(h, "h")
    _check_rows(out, "out")
    assert h.shape == (m, n) and out.shape == (m, n), (tuple(h.shape), tuple(out.shape), (m, n))
    assert db.dtype == torch.float32 and db.shape == (n,) and db.is_contiguous(), (db.dtype, tuple(db.shape))
    if h_t is not None:
        _check_rows(h_t, "h_t")
        assert h_t.shape == (n, m), (tuple(h_t.shape), (n, m))
    rc = lib.amx_dgrad_relu_bf16(a.data_ptr(), a.stride(0), b.data_ptr(), b.stride(0), int(b_transposed),
                                 out.data_ptr(), out.stride(0), m, n, k, h.data_ptr(), h.stride(0), float(scale),
                                 db.data_ptr(), h_t.data_ptr() if h_t is not None else None,
                                 h_t.stride(0) if h_t is not None else 0, threads or torch.get_num_threads())
    _check_rc(rc)
    return out
