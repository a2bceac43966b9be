"""What the Python suites (tests/sdk, tests/browser) share: starting the fake upstream and a real
flo2 binary on a free port with a fresh data directory, and stopping them cleanly."""

import os
import socket
import subprocess
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fake_upstream():
    """The fake upstream binary; returns (process, base URL)."""
    proc = subprocess.Popen([os.environ["FAKE_UPSTREAM_BIN"]], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def start_flo2(prefix):
    """`flo2 serve` on a free port with its own data directory; returns (process, base URL) once
    /readyz answers."""
    data = tempfile.mkdtemp(prefix=prefix)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "FLO2_LISTEN": f"127.0.0.1:{port}",
        "FLO2_DATA_DIR": data,
        "FLO2_ALLOW_PRIVATE_UPSTREAMS": "true",
        "FLO2_LOG": "warn",
    }
    proc = subprocess.Popen([os.environ["FLO2_BIN"], "serve"], env=env, cwd=data)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{base}/readyz")
            return proc, base
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("flo2 exited during start")
            time.sleep(0.1)
    raise RuntimeError("flo2 did not become ready")


def stop(proc, must_exit_cleanly=False):
    proc.terminate()
    code = proc.wait(timeout=30)
    if must_exit_cleanly:
        assert code == 0, "flo2 exits cleanly on SIGTERM"
