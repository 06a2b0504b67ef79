"""Whether the AMX GEMM is used (asrkd.kernels.amx_gemm.available / status), on any CPU: the CPU
flags and the OS's permission are checked before a compiler runs, a CPU without AMX costs nothing
and logs nothing that reads as a failure, and a build failure is reported only when a build ran.
(tests/test_amx_gemm.py tests the kernel itself and runs only where AMX is available.)"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any, Iterator

import pytest

from asrkd.kernels import amx_gemm


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test probes afresh; afterwards the real answer is probed again when next asked."""
    monkeypatch.delenv("ASRKD_AMX", raising=False)
    amx_gemm._probe.cache_clear()
    yield
    amx_gemm._probe.cache_clear()


def _no_compiler(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Makes any child process or build attempt fail the test; returns the list of attempts."""
    attempts: list[Any] = []

    class NoChild:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            attempts.append(args)
            raise AssertionError(f"a process was started: {args}")

    def no_build(*args: Any, **kwargs: Any) -> None:
        attempts.append("build")
        raise AssertionError("build() was called")

    monkeypatch.setattr(subprocess, "Popen", NoChild)
    monkeypatch.setattr(amx_gemm, "build", no_build)
    return attempts


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_cpu_without_amx_runs_no_compiler_and_warns_nothing(monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="asrkd")
    attempts = _no_compiler(monkeypatch)
    monkeypatch.setattr(amx_gemm, "_cpu_has_amx", lambda: False)
    monkeypatch.setattr(amx_gemm, "_os_permits_amx", lambda: pytest.fail("OS asked on a CPU without AMX"))
    assert not amx_gemm.available()
    assert amx_gemm.status() == "no AMX on this CPU: oneDNN GEMM"
    assert attempts == [] and _warnings(caplog) == []
    assert "fail" not in caplog.text


@pytest.mark.skipif(amx_gemm._cpu_has_amx(), reason="this CPU has AMX")
def test_this_cpu_without_amx_answers_without_a_child_process(monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """The real probe (real /proc/cpuinfo) on this machine: no process, no build, no warning."""
    attempts = _no_compiler(monkeypatch)
    assert not amx_gemm.available()
    assert amx_gemm.status() == "no AMX on this CPU: oneDNN GEMM"
    assert attempts == [] and _warnings(caplog) == []


def test_an_os_refusing_amx_runs_no_compiler(monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    attempts = _no_compiler(monkeypatch)
    monkeypatch.setattr(amx_gemm, "_cpu_has_amx", lambda: True)
    monkeypatch.setattr(amx_gemm, "_os_permits_amx", lambda: False)
    assert not amx_gemm.available()
    assert amx_gemm.status() == "the OS does not grant AMX: oneDNN GEMM"
    assert attempts == [] and _warnings(caplog) == []


def test_a_failed_build_is_reported_only_when_a_build_ran(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    built: list[bool] = []

    def failing_build() -> None:
        built.append(True)
        raise RuntimeError("gcc failed on amx_gemm.c: no such option")

    monkeypatch.setattr(amx_gemm, "_cpu_has_amx", lambda: True)
    monkeypatch.setattr(amx_gemm, "_os_permits_amx", lambda: True)
    monkeypatch.setattr(amx_gemm, "build", failing_build)
    assert not amx_gemm.available() and not amx_gemm.available()
    assert built == [True]  # once per process
    assert amx_gemm.status() == "the build failed: oneDNN GEMM"
    assert any("build failed" in w and "no such option" in w for w in _warnings(caplog))


def test_off_switch_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts = _no_compiler(monkeypatch)
    monkeypatch.setenv("ASRKD_AMX", "0")
    monkeypatch.setattr(amx_gemm, "_cpu_has_amx", lambda: pytest.fail("CPU probed with ASRKD_AMX=0"))
    assert not amx_gemm.available()
    assert amx_gemm.status() == "turned off (ASRKD_AMX=0): oneDNN GEMM"
    assert attempts == []


def test_off_switch_in_a_fresh_process() -> None:
    """ASRKD_AMX=0: available() is False, so the step keeps oneDNN everywhere."""
    code = "from asrkd.kernels import amx_gemm; import sys; sys.exit(0 if not amx_gemm.available() else 1)"
    env = {**os.environ, "ASRKD_AMX": "0"}
    assert subprocess.run([sys.executable, "-c", code], env=env, check=False).returncode == 0


def test_the_os_permission_probe_answers_without_the_library() -> None:
    """The permission request is a plain system call (no compiled code needed): on a CPU without
    AMX the OS refuses it; with AMX its answer is what the library's own request gets."""
    if not amx_gemm._cpu_has_amx():
        assert amx_gemm._os_permits_amx() is False
    else:
        assert amx_gemm._os_permits_amx() in (True, False)
