"""A real OpenSSH server on 127.0.0.1 with generated keys: the "board" is this machine."""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass(frozen=True)
class LocalBoard:
    port: int
    folder: Path
    known_hosts: Path
    identity: Path

    def address(self, python: str = sys.executable, known_hosts: Path | None = None, port: int | None = None) -> str:
        query = urlencode({"python": python, "known_hosts": known_hosts or self.known_hosts,
                           "identity": self.identity})
        return f"ssh://{getpass.getuser()}@127.0.0.1:{port or self.port}?{query}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@contextmanager
def local_sshd(folder: Path) -> Iterator[LocalBoard]:
    host_key, client_key = keygen(folder / "host_key"), keygen(folder / "client_key")
    (folder / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
AuthorizedKeysFile {folder}/authorized_keys
PidFile {folder}/sshd.pid
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
""")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # the privilege-separation folder a root sshd insists on
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(port, server)
        known_hosts = folder / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {Path(f'{host_key}.pub').read_text()}")
        yield LocalBoard(port, folder, known_hosts, client_key)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_for(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"sshd exited at start: {server.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("sshd did not listen within 10 s")
