"""Local server processes in tests: a free loopback port, Prefect's flow-run filter, stopping a process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def runs_in(api: str, *states: str) -> list[dict]:
    """The Prefect server's flow runs in any of ``states`` (at most 10)."""
    query = {"flow_runs": {"state": {"type": {"any_": list(states)}}}, "limit": 10}
    return httpx.post(f"{api}/flow_runs/filter", json=query, timeout=10).json()


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group started with ``start_new_session``, SIGKILL after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
