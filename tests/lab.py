"""A real labgrid lab on 127.0.0.1: a coordinator and an exporter that publishes the test sshd as places.

Everything runs as the lab's own commands (labgrid-coordinator, labgrid-exporter, labgrid-client), on free ports
in a temporary folder, and is killed when the `with` ends.
"""
from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from sshd import LocalBoard, free_port

BIN = Path(sys.executable).parent
LABGRID_INSTALLED = shutil.which("labgrid-coordinator", path=str(BIN)) is not None


@dataclass(frozen=True)
class LocalLab:
    coordinator: str
    board: LocalBoard

    def client(self, *args: str, check: bool = True, user: str | None = None) -> subprocess.CompletedProcess:
        """`labgrid-client -x COORDINATOR ARGS` as the lab's people run it (as `user`, when given)."""
        environment = {**os.environ, **({"LG_USERNAME": user} if user else {})}
        done = subprocess.run([str(BIN / "labgrid-client"), "-x", self.coordinator, *args],
                              capture_output=True, text=True, timeout=60, env=environment)
        if check and done.returncode != 0:
            raise RuntimeError(f"labgrid-client {' '.join(args)}: {done.stdout}{done.stderr}")
        return done

    def address(self, place: str = "", timeout: float = 60, coordinator: str | None = None,
                python: Path | None = None, **tags: str) -> str:
        query = {**tags, "timeout": timeout, "coordinator": coordinator or self.coordinator,
                 "python": python or sys.executable,
                 "known_hosts": self.board.known_hosts, "identity": self.board.identity}
        return f"labgrid://{place}?{urlencode(query)}"

    def acquired_by(self, place: str) -> str | None:
        shown = self.client("-p", place, "show").stdout
        holder = next(line.split(":", 1)[1].strip() for line in shown.splitlines() if "acquired:" in line)
        return None if holder == "None" else holder


@contextmanager
def local_lab(folder: Path, board: LocalBoard, places: dict[str, dict[str, str]]) -> Iterator[LocalLab]:
    """A coordinator and an exporter; each of `places` (name -> tags) is the test sshd as one board."""
    port = free_port()
    coordinator = f"127.0.0.1:{port}"
    config = folder / "exporter.yaml"
    config.write_text("".join(f"""\
{name}:
  NetworkService:
    address: 127.0.0.1
    port: {board.port}
    username: {getpass.getuser()}
""" for name in places))
    started = []
    try:
        started.append(subprocess.Popen([str(BIN / "labgrid-coordinator"), "-l", coordinator], cwd=folder,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        lab = LocalLab(coordinator, board)
        _wait_until(lambda: lab.client("places", check=False).returncode == 0, "the coordinator to answer")
        started.append(subprocess.Popen([str(BIN / "labgrid-exporter"), "-c", coordinator, "-n", "rack",
                                         "--hostname", "127.0.0.1", str(config)], cwd=folder,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_until(lambda: "NetworkService" in lab.client("resources", check=False).stdout, "the exporter")
        for name, tags in places.items():
            lab.client("-p", name, "create")
            lab.client("-p", name, "add-match", f"rack/{name}/NetworkService")
            if tags:
                lab.client("-p", name, "set-tags", *(f"{key}={value}" for key, value in tags.items()))
        yield lab
    finally:
        for process in reversed(started):
            process.kill()
            process.wait(timeout=10)


def _wait_until(ready, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")
