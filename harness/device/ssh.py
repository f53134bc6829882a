"""The SSH transport to a board, on paramiko: host keys always verified, files copied through `cat`,
every remote argument quoted.

Each failure becomes one NcapError line that names it and the fix: an unknown or changed host key,
an unreachable address, a refused login, a board that goes silent.
"""
from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import Iterator

import paramiko

from harness.device.address import DeviceAddress
from harness.errors import NcapError

CONNECT_TIMEOUT_S = 15.0


def fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as OpenSSH prints it (`ssh-keygen -lf`): SHA256, base64 without padding."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


class _RejectUnknownHost(paramiko.MissingHostKeyPolicy):
    """Never trust a key on first use: a board is added to known_hosts by a person who checked it."""

    def __init__(self, address: DeviceAddress) -> None:
        self.address = address

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise NcapError(
            f"{self.address} is not in known_hosts (it offers {key.get_name()} {fingerprint(key)}); check that "
            f"fingerprint on the board, then add it: ssh-keyscan -p {self.address.port} {self.address.host} "
            ">> ~/.ssh/known_hosts (or give ?known_hosts=FILE)")


class RemoteCommand:
    """A command running on the board: its stdout line by line as it arrives, then its exit status."""

    def __init__(self, channel: paramiko.Channel, idle_timeout_s: float) -> None:
        self.channel = channel
        channel.settimeout(idle_timeout_s)
        self._stdout, self._stderr = channel.makefile("r"), channel.makefile_stderr("r")
        self.idle_timeout_s = idle_timeout_s

    def lines(self) -> Iterator[str]:
        try:
            yield from (line.rstrip("\n") for line in self._stdout)
        except TimeoutError as exc:
            self.channel.close()
            raise NcapError(f"the board sent nothing for {self.idle_timeout_s:g} s; it may hang or the link "
                            "may be down: check the board, then rerun") from exc

    def exit_status(self) -> int:
        """The command's exit status; -1 when the connection ended without one (link lost, sshd killed)."""
        return self.channel.recv_exit_status()

    def stderr_tail(self) -> str:
        try:
            lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        except (TimeoutError, OSError):
            return ""
        return lines[-1][:300] if lines else ""


class SshSession:
    """One connection to `address`, as a context manager."""

    def __init__(self, address: DeviceAddress, idle_timeout_s: float = 600.0) -> None:
        self.address, self.idle_timeout_s = address, idle_timeout_s
        self._client = paramiko.SSHClient()

    def __enter__(self) -> SshSession:
        client, address = self._client, self.address
        client.load_system_host_keys()  # ~/.ssh/known_hosts, never written to
        if address.known_hosts is not None:
            if not address.known_hosts.is_file():
                raise NcapError(f"known_hosts file {address.known_hosts} does not exist; "
                                "fix ?known_hosts= in the device address")
            client.load_system_host_keys(str(address.known_hosts))
        client.set_missing_host_key_policy(_RejectUnknownHost(address))
        try:
            client.connect(address.host, port=address.port, username=address.user,
                           key_filename=str(address.identity) if address.identity else None, password=address.password,
                           timeout=CONNECT_TIMEOUT_S, banner_timeout=CONNECT_TIMEOUT_S, auth_timeout=CONNECT_TIMEOUT_S)
        except NcapError:
            client.close()
            raise
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise NcapError(
                f"{address} offers {exc.key.get_name()} {fingerprint(exc.key)}, not the key known_hosts holds "
                f"for it ({fingerprint(exc.expected_key)}): a re-imaged board or a man in the middle; verify it, "
                f"then replace the entry (ssh-keygen -R '[{address.host}]:{address.port}')") from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise NcapError(f"{address} refused the login as {address.user!r} ({exc}); install your public key on "
                            "the board or give ?identity=KEYFILE") from exc
        except (OSError, paramiko.SSHException) as exc:  # TimeoutError is an OSError
            client.close()
            raise NcapError(f"device {address} is unreachable ({type(exc).__name__}: {exc}); check the address, "
                            "the network and that sshd runs on the board") from exc
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._client.close()

    def put(self, content: bytes, remote: str) -> None:
        """Write `content` to the file `remote` through `cat` on the board's shell, not SFTP: many boards'
        images (dropbear, BusyBox) have no sftp-server."""
        channel = self._client.get_transport().open_session()
        channel.exec_command(f"cat > {shlex.quote(remote)}")
        channel.sendall(content)
        channel.shutdown_write()
        status = channel.recv_exit_status()
        if status != 0:
            raise NcapError(f"cannot write {remote} on {self.address} (exit {status}); check free space in /tmp")

    def run(self, argv: list[str], cwd: str | None = None, pythonpath: str | None = None) -> RemoteCommand:
        """Start `argv` on the board (each argument quoted, so nothing in it reaches a shell unquoted)."""
        command = "exec " + shlex.join(argv)
        if pythonpath:
            command = f"PYTHONPATH={shlex.quote(pythonpath)} {command}"
        if cwd:
            command = f"cd {shlex.quote(cwd)} && {command}"
        channel = self._client.get_transport().open_session()
        channel.exec_command(command)
        return RemoteCommand(channel, self.idle_timeout_s)

    def check_output(self, argv: list[str]) -> str:
        """Run a short command and return its stdout; a non-zero exit is an NcapError with its stderr."""
        remote = self.run(argv)
        output = "\n".join(remote.lines())
        status = remote.exit_status()
        if status != 0:
            raise NcapError(f"{shlex.join(argv)} failed on {self.address} (exit {status}): {remote.stderr_tail()}")
        return output
