"""Background processes of the environment: free ports, spawning detached servers, stopping them by PID."""

import os
import signal
import socket
import subprocess
import time


def free_port():
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(argv, log_path, env=None):
    """Starts `argv` in its own session (it outlives `up`), output to `log_path`; returns its PID."""
    with open(log_path, "ab") as log:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 env=env, start_new_session=True)
    return child.pid


def alive(pid):
    """Whether process `pid` exists (and is not a zombie we could reap)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(pid, grace=5.0):
    """SIGTERM, then SIGKILL after `grace` seconds; quiet when the process is already gone."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.05)


def wait_for(what, predicate, timeout=30.0, pid=None, log_path=None):
    """Polls `predicate` until it is true; raises naming `what` (and the log's tail) on timeout or
    when `pid` dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # not up yet
            pass
        if pid is not None and not alive(pid):
            raise RuntimeError(f"{what} exited while starting{tail(log_path)}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s{tail(log_path)}")


def tail(log_path, lines=15):
    """The last lines of a log, for an error message."""
    if not log_path or not os.path.exists(log_path):
        return ""
    with open(log_path, errors="replace") as f:
        text = "".join(f.readlines()[-lines:])
    return f"; the end of {log_path}:\n{text}"
