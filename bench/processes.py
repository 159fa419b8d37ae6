"""The benchmarks' hold on processes: ending, pausing, their memory and CPU time."""

import os
import signal
import time


def end_processes(procs, timeout: float = 15) -> None:
    """SIGCONT (a stopped process cannot hear SIGTERM), SIGTERM, wait, then SIGKILL."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
            except OSError:
                pass
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except Exception:
            proc.kill()
            proc.wait(5)


def process_rss(pid: int, children: bool = True) -> int:
    """Resident memory of a process and (by default) its children, in bytes."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + (proc.children(recursive=True) if children else [])
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User and system CPU time a process (and its children) has used so far."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc] + (proc.children(recursive=True) if children else [])
        total = 0.0
        for p in procs:
            try:
                times = p.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


def stop_process(proc) -> None:
    """SIGSTOP: the process holds still (and takes no CPU) until resume_process."""
    os.kill(proc.pid, signal.SIGSTOP)


def resume_process(proc) -> None:
    os.kill(proc.pid, signal.SIGCONT)
