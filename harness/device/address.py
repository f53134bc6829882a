"""A board's address: `ssh://user@host[:port][?python=PATH&known_hosts=FILE&identity=FILE]`."""
from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from harness.errors import NcapError

OPTIONS = ("python", "known_hosts", "identity")


@dataclass(frozen=True)
class DeviceAddress:
    user: str
    host: str
    port: int = 22
    python: str = "python3"  # the board's interpreter with numpy and the runtime installed
    known_hosts: Path | None = None  # checked besides ~/.ssh/known_hosts; host keys are always verified
    identity: Path | None = None  # private key; else the ssh agent and ~/.ssh/id_*
    password: str | None = field(default=None, repr=False)  # only from a labgrid NetworkService that has one

    @classmethod
    def parse(cls, text: str) -> DeviceAddress:
        usage = "write it as ssh://user@host[:port][?python=PATH&known_hosts=FILE&identity=FILE]"
        try:
            parts = urlsplit(text)
            port = 22 if parts.port is None else parts.port  # urllib checks the port here, IPv6 brackets above
        except ValueError as exc:
            raise NcapError(f"device {text!r} is malformed ({exc}); {usage}") from exc
        if port == 0:
            raise NcapError(f"device {text!r} names port 0, which no SSH server listens on; {usage}")
        if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/"):
            raise NcapError(f"device {text!r} is not an ssh:// address; {usage}")
        query = parse_qs(parts.query, strict_parsing=False)
        unknown = sorted(set(query) - set(OPTIONS))
        if unknown:
            raise NcapError(f"device {text!r} has unknown option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
        option = {key: values[-1] for key, values in query.items()}
        return cls(user=parts.username or getpass.getuser(), host=parts.hostname, port=port,
                   python=option.get("python", "python3"),
                   known_hosts=Path(option["known_hosts"]).expanduser() if "known_hosts" in option else None,
                   identity=Path(option["identity"]).expanduser() if "identity" in option else None)

    def __str__(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"
