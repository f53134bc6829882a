"""A user's text file (model card, requirements, platform profile, baseline), read with one clear error."""
from __future__ import annotations

from pathlib import Path

from harness.errors import NcapError


def read_text(path: Path, what: str, option: str) -> str:
    """The file's text, or an NcapError naming the file and the option: missing, unreadable, or not UTF-8 text
    (a binary file given by mistake)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NcapError(f"cannot read {what} {path}: {exc.strerror or exc}; check {option}") from exc
    except UnicodeDecodeError as exc:
        raise NcapError(f"{what} {path} is not a text file (byte {exc.start} is not UTF-8); check {option}") from exc
