"""What a user installs and what the server holds idle: `pip install '.[server]'` from this tree into a
fresh venv, the size of its site-packages, then `llmlens serve` from that venv on an empty data directory.

    .venv/bin/python -m benchmarks.bench_install

Sizes are apparent bytes of every file under site-packages (as `du -s --apparent-size`), with and without
pip and setuptools (which come with the venv, not with llmlens). Idle RSS is read 1 s after the server
answers, as `bench_otlp` reads it in the dev venv (which holds the test tools too, so it reads higher).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ._proc import rss_mib

REPO = Path(__file__).resolve().parent.parent
_VENV_TOOLS = ("pip", "setuptools", "_distutils_hack", "distutils-precedence.pth")


def _site_packages(venv: Path) -> Path:
    (found,) = (venv / "lib").glob("python3*/site-packages")
    return found


def _apparent_bytes(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def install_sizes(venv: Path) -> dict[str, float]:
    site = _site_packages(venv)
    total = _apparent_bytes(site)
    tools = sum(_apparent_bytes(p) for p in site.iterdir() if p.name.split("-")[0] in _VENV_TOOLS)
    by_package: dict[str, int] = {}
    for p in site.iterdir():
        if not p.name.endswith((".dist-info", "__pycache__")):
            by_package[p.name] = _apparent_bytes(p)
    largest = dict(sorted(by_package.items(), key=lambda kv: -kv[1])[:6])
    return {
        "total_mb": total / 1e6,
        "without_pip_mb": (total - tools) / 1e6,
        **{f"largest {name} mb": size / 1e6 for name, size in largest.items()},
    }


def idle_rss(venv: Path) -> float:
    with tempfile.TemporaryDirectory() as data:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMLENS_", "VIRTUAL_ENV", "PYTHON"))}
        env.update(LLMLENS_PORT=str(port), LLMLENS_OTLP_GRPC_PORT="0")
        proc = subprocess.Popen(
            [str(venv / "bin" / "llmlens"), "serve", "--data", data],
            env=env,
            cwd=data,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"llmlens serve did not answer (exit {proc.poll()})")
                time.sleep(0.05)
            time.sleep(1.0)
            return rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"{REPO}[server]"],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        sizes = install_sizes(venv)
        rss = [idle_rss(venv) for _ in range(3)]
    return {**sizes, "idle_rss_mib": sorted(rss)[1], "idle_rss_runs": rss}


def run(quick: bool = False) -> list[dict[str, Any]]:
    found = measure()
    bench = "fresh install of llmlens[server]"
    rows: list[dict[str, Any]] = [
        {
            "benchmark": bench,
            "case": "site-packages",
            "value": round(found["total_mb"], 1),
            "unit": "MB",
            "target": "< 200",
            "met": found["total_mb"] < 200,
        },
        {
            "benchmark": bench,
            "case": "site-packages without pip/setuptools",
            "value": round(found["without_pip_mb"], 1),
            "unit": "MB",
        },
        {
            "benchmark": bench,
            "case": "llmlens serve idle RSS (empty store, median of 3)",
            "value": round(found["idle_rss_mib"], 1),
            "unit": "MiB",
            "target": "< 150",
            "met": found["idle_rss_mib"] < 150,
        },
    ]
    for key, value in found.items():
        if key.startswith("largest "):
            name = key.removeprefix("largest ").removesuffix(" mb")
            rows.append({"benchmark": bench, "case": f"of it: {name}", "value": round(value, 1), "unit": "MB"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    found = measure()
    print(json.dumps(found, indent=2))
    if args.json:
        args.json.write_text(json.dumps(found))


if __name__ == "__main__":
    main()
