"""Decode worker processes leave with their server, however it dies: SIGKILLed while its workers are
still starting (they must not mistake their new parent for the server), or once they are up."""

from __future__ import annotations

import array
import fcntl
import json
import os
import re
import signal
import termios
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from tests.support.llmlens_server import LLMLensServer

MARK = "LLMLENS_TEST_PROCESS_MARK"  # inherited by every process the server starts


def _large_otlp_json(spans: int = 300) -> bytes:
    now = time.time_ns()
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "exit-test"}}]},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": f"{i + 1:032x}",
                                "spanId": f"{i + 1:016x}",
                                "name": "chat",
                                "kind": 3,
                                "startTimeUnixNano": str(now - 1_000_000_000),
                                "endTimeUnixNano": str(now),
                                "attributes": [
                                    {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                                    {"key": "gen_ai.prompt.0.content", "value": {"stringValue": "lorem " * 60}},
                                ],
                            }
                            for i in range(spans)
                        ]
                    }
                ],
            }
        ]
    }
    encoded = json.dumps(body).encode()
    assert len(encoded) >= 64 * 1024  # large enough for the decode workers
    return encoded


def _marked_processes(mark: str) -> list[int]:
    """Live (not zombie) processes carrying `mark` in their environment: the server and all it started."""
    needle = f"{MARK}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if needle not in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(entry))
    return found


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _is_decode_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in cmdline and b"resource_tracker" not in cmdline


@pytest.mark.parametrize("when", ["while its worker starts", "once its workers are up"])
def test_decode_workers_leave_with_a_sigkilled_server(tmp_path: Path, when: str) -> None:
    mark = uuid.uuid4().hex
    srv = LLMLensServer(tmp_path, env={"LLMLENS_DECODE_WORKERS": "1", MARK: mark})
    srv.start()
    body = _large_otlp_json()
    headers = {"Content-Type": "application/json"}
    frozen: int | None = None
    try:
        assert srv.proc is not None
        server_pid = srv.proc.pid
        if when == "while its worker starts":
            # Hold the first worker still right after it is spawned, until the server has handed it
            # its start-up data; kill the server; then let the worker go on starting, orphaned.
            poster = threading.Thread(target=_post_quietly, args=(f"{srv.url}/v1/traces", body, headers), daemon=True)
            poster.start()
            frozen = _freeze_first_worker(server_pid, srv)
            _wait_for_start_up_data(frozen)
        else:
            deadline = time.monotonic() + 30
            while "OTLP decode workers ready" not in srv.log():
                assert httpx.post(f"{srv.url}/v1/traces", content=body, headers=headers, timeout=30).status_code == 200
                assert time.monotonic() < deadline, f"the decode workers did not start:\n{srv.log()}"
        assert [pid for pid in _marked_processes(mark) if pid != server_pid], "the server had started no process"
        srv.stop(kill=True)  # SIGKILL: the server cannot stop its workers itself
    finally:
        srv.stop()
        if frozen is not None:
            os.kill(frozen, signal.SIGCONT)
    deadline = time.monotonic() + 15
    while left := _marked_processes(mark):
        if time.monotonic() > deadline:
            for pid in left:  # do not leave them behind for the next tests
                os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"processes of a killed server still running: {left}")
        time.sleep(0.05)


def _freeze_first_worker(server_pid: int, srv: LLMLensServer) -> int:
    deadline = time.monotonic() + 30
    while True:
        for pid in _children(server_pid):
            if _is_decode_worker(pid):
                os.kill(pid, signal.SIGSTOP)
                return pid
        assert time.monotonic() < deadline, f"the server started no decode worker:\n{srv.log()}"
        time.sleep(0.001)


def _wait_for_start_up_data(worker: int) -> None:
    """Until the server has written the worker's start-up data into the pipe the worker reads it from."""
    cmdline = Path(f"/proc/{worker}/cmdline").read_bytes().decode()
    found = re.search(r"pipe_handle=(\d+)", cmdline)
    assert found is not None, cmdline
    fd = os.open(f"/proc/{worker}/fd/{found.group(1)}", os.O_RDONLY | os.O_NONBLOCK)
    try:
        waiting = array.array("i", [0])
        deadline = time.monotonic() + 30
        while not waiting[0]:
            assert time.monotonic() < deadline, "the server wrote nothing to its new worker"
            time.sleep(0.001)
            fcntl.ioctl(fd, termios.FIONREAD, waiting)
    finally:
        os.close(fd)


def _post_quietly(url: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        httpx.post(url, content=body, headers=headers, timeout=30)
    except httpx.HTTPError:
        pass  # the server is killed under it
