"""A board from a labgrid pool: `--device labgrid://PLACE` or `labgrid://?soc=qcs8255` (any free place with those tags).

labgrid (the `lab` extra) keeps the lab's places on its coordinator; this module takes one for the run and hands
its NetworkService (address, port, username) to the SSH device path, where host keys are verified as for ssh://.

One helper process per pytest process holds the place: `python -m harness.device.lab`, started by `LabLease`. It
joins labgrid's queue (a reservation filtered by the place's name and/or tags, polled so that it does not expire),
acquires the place allocated to it, prints the board's address as a JSON line, then holds the place until its
stdin closes, and releases the place and cancels the reservation. The kernel closes that pipe however the run ends
(its end, a failure, Ctrl-C, SIGTERM or SIGKILL), and labgrid never expires an acquired place by itself, so the
holder is what makes a killed run leave its board free. It also keeps labgrid's gRPC event loop out of pytest.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import importlib.util
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import harness
from harness.device.address import OPTIONS as SSH_OPTIONS
from harness.device.address import DeviceAddress
from harness.errors import NcapError

DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default
DEFAULT_TIMEOUT_S = 600.0
PROGRESS_EVERY_S = 10.0
TAG_KEY = re.compile(r"[a-z][a-z0-9_]+")  # labgrid.remote.common.TAG_KEY, checked here before labgrid is imported
USAGE = ("write it as labgrid://PLACE or labgrid://?TAG=VALUE[&TAG=VALUE][&timeout=S][&coordinator=HOST:PORT]"
         "[&python=PATH&known_hosts=FILE&identity=FILE]")
NEEDS_EXTRA = "--device labgrid:// needs labgrid: pip install 'dms-ncap[lab]'"


@dataclass(frozen=True)
class LabAddress:
    """Which place to take: one by name, or any with these tags; and how to reach the board once it is held."""

    place: str | None
    tags: dict[str, str]
    coordinator: str
    timeout_s: float = DEFAULT_TIMEOUT_S  # the longest wait in labgrid's queue before the run gives up
    ssh: dict[str, str] = field(default_factory=dict)  # ?python=, ?known_hosts=, ?identity= for the SSH path

    @classmethod
    def parse(cls, text: str, lg_env: Path | None = None, lg_coordinator: str | None = None) -> LabAddress:
        """`text`, completed by labgrid's own options where it leaves something out: the place, coordinator and
        SSH key of the `--lg-env` file's target, and `--lg-coordinator`."""
        try:
            parts = urlsplit(text)
        except ValueError as exc:
            raise NcapError(f"device {text!r} is malformed ({exc}); {USAGE}") from exc
        if parts.scheme != "labgrid" or parts.path not in ("", "/"):
            raise NcapError(f"device {text!r} is not a labgrid:// address; {USAGE}")
        query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        if importlib.util.find_spec("labgrid") is None:
            raise NcapError(NEEDS_EXTRA)
        env = _lg_env(lg_env) if lg_env else {}
        ssh = {key: query.pop(key) for key in SSH_OPTIONS if key in query}
        if env.get("identity"):
            ssh.setdefault("identity", env["identity"])
        coordinator = (query.pop("coordinator", None) or lg_coordinator or env.get("coordinator")
                       or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR)
        timeout_s = _timeout(query.pop("timeout", None), text)
        bad = sorted(key for key, value in query.items() if not TAG_KEY.fullmatch(key) or not value)
        if bad:
            raise NcapError(f"device {text!r}: {', '.join(bad)} is not a TAG=VALUE filter (tags are lower-case, "
                            f"from two letters, with a value); {USAGE}")
        place = parts.netloc or (None if query else env.get("place"))
        if not place and not query:
            raise NcapError(f"device {text!r} names neither a place nor tags; {USAGE}, or give --lg-env FILE "
                            "whose target has a RemotePlace")
        return cls(place, query, coordinator, timeout_s, ssh)

    @property
    def wanted(self) -> str:
        """The place or the tags, as a person would say it."""
        tags = ", ".join(f"{key}={value}" for key, value in self.tags.items())
        if self.place:
            return f"place {self.place}" + (f" ({tags})" if tags else "")
        return f"a place with {tags}"

    def __str__(self) -> str:
        return f"labgrid://{self.place or ''}" + (f"?{urlencode(self.tags)}" if self.tags else "")


def _timeout(text: str | None, address: str) -> float:
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise NcapError(f"device {address!r}: timeout={text} is not a positive number of seconds; e.g. timeout=1800")
    return seconds


def _lg_env(path: Path) -> dict[str, str]:
    """A labgrid environment file's main (or only) target: its RemotePlace, SSHDriver keyfile, coordinator."""
    from labgrid.config import Config
    from labgrid.exceptions import InvalidConfigError, NoConfigFoundError
    from labgrid.factory import target_factory

    try:
        config = Config(str(path))
        targets = config.get_targets() or {}
    except (InvalidConfigError, NoConfigFoundError) as exc:
        raise NcapError(f"--lg-env {path}: {exc}; give a labgrid environment file") from exc
    role = "main" if "main" in targets else next(iter(targets), None) if len(targets) == 1 else None
    if role is None:
        raise NcapError(f"--lg-env {path} has targets {', '.join(targets) or 'none'}: name one `main`, or name the "
                        "place in the address (labgrid://PLACE)")
    resources, drivers = target_factory.normalize_config(targets[role])
    keyfiles = [args.get("keyfile") for args, _ in drivers.get("SSHDriver", {}).values() if args.get("keyfile")]
    return {"place": next(iter(resources.get("RemotePlace", {})), None),
            "coordinator": config.get_option("coordinator_address", ""),
            "identity": config.resolve_path(keyfiles[0]) if keyfiles else None}


@dataclass(frozen=True)
class HeldPlace:
    """The place this run holds and the board's SSH address it published."""

    place: str
    tags: dict[str, str]
    board: DeviceAddress
    acquired_at: str


class LabLease:
    """The place this process measures on, taken at the first board run and held until `release`."""

    def __init__(self, address: LabAddress, progress: Callable[[str], None]) -> None:
        self.address, self.progress = address, progress
        self.held: HeldPlace | None = None
        self._holder: subprocess.Popen | None = None
        self._failure: NcapError | None = None  # every later cell hears it at once, rather than waiting again

    def acquire(self) -> HeldPlace:
        if self.held is None and self._failure is None:
            try:
                self.held = self._take()
            except NcapError as exc:
                self._failure = exc
        if self._failure is not None:
            raise self._failure
        return self.held

    def _take(self) -> HeldPlace:
        self.progress(f"lab: waiting for {self.address.wanted} on the labgrid coordinator {self.address.coordinator} "
                      f"(up to {self.address.timeout_s:g} s)")
        package_root = str(Path(harness.__file__).resolve().parents[1])
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [package_root, *filter(None, [os.environ.get("PYTHONPATH")])])}
        # a session of its own: Ctrl-C or a kill of the run's process group reaches the run, and the holder
        # then sees its stdin close; labgrid's log lines would land in pytest's captured output, so they go nowhere
        self._holder = subprocess.Popen(
            [sys.executable, "-m", "harness.device.lab", json.dumps(dataclasses.asdict(self.address))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=environment,
            start_new_session=True)
        for line in self._holder.stdout:
            if not line.startswith("{"):
                continue  # a library's stray print, not one of the holder's events
            event = json.loads(line)
            if event["event"] == "waiting":
                self.progress(f"lab: {event['message']}")
            elif event["event"] == "error":
                self._holder.wait(timeout=30)
                raise NcapError(event["message"])
            elif event["event"] == "acquired":
                held = _held_place(event, self.address)
                self.progress(f"lab: acquired place {held.place} (board {held.board}) at {held.acquired_at}")
                return held
        status = self._holder.wait(timeout=30)
        raise NcapError(f"the labgrid holder for {self.address.wanted} exited with status {status} before it held "
                        f"a place; check that `{sys.executable} -c 'import labgrid'` works")

    def release(self) -> None:
        """Hand the place back (a no-op when none was taken); waits for the coordinator to confirm."""
        holder, self._holder = self._holder, None
        if holder is None or holder.poll() is not None:
            return
        try:
            rest = holder.communicate(timeout=30)[0]  # closes its stdin: the holder releases, says so and exits
        except subprocess.TimeoutExpired:
            holder.kill()
            rest = ""
        released = [json.loads(line) for line in rest.splitlines() if line.startswith("{") and '"released"' in line]
        if self.held is not None:
            if released:
                self.progress(f"lab: released place {self.held.place} at {released[-1]['at']}")
            else:
                self.progress(f"lab: place {self.held.place} may still be acquired; free it with "
                              f"labgrid-client -x {self.address.coordinator} -p {self.held.place} release")


def _held_place(event: dict[str, Any], address: LabAddress) -> HeldPlace:
    ssh = address.ssh
    board = DeviceAddress(
        user=event["username"], host=event["address"], port=int(event["port"]), python=ssh.get("python", "python3"),
        known_hosts=Path(ssh["known_hosts"]).expanduser() if "known_hosts" in ssh else None,
        identity=Path(ssh["identity"]).expanduser() if "identity" in ssh else None, password=event.get("password"))
    return HeldPlace(event["place"], event["tags"], board, event["at"])


# ---- the holder process: everything below runs in `python -m harness.device.lab`, with labgrid imported ----

def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "at": _now(), **fields}), flush=True)


class _Holder:
    """Reserve, wait, acquire, publish the board, hold until told to stop, release."""

    def __init__(self, address: LabAddress) -> None:
        from labgrid.remote.client import start_session

        self.address = address
        self.stop = asyncio.Event()
        try:
            self.session = start_session(address.coordinator)
        except Exception as exc:  # labgrid raises its own ServerError, grpc its own errors: each is "no coordinator"
            raise NcapError(f"the labgrid coordinator at {address.coordinator} does not answer ({exc}); start "
                            "labgrid-coordinator there, or fix LG_COORDINATOR or ?coordinator=HOST:PORT") from exc
        self.loop = self.session.loop
        self.loop.add_reader(sys.stdin.fileno(), self._on_stdin)
        self.loop.add_signal_handler(signal.SIGTERM, self.stop.set)
        self.token: str | None = None
        self.place: str | None = None

    def _on_stdin(self) -> None:
        if not os.read(sys.stdin.fileno(), 4096):  # EOF: the run ended, however it ended
            self.loop.remove_reader(sys.stdin.fileno())
            self.stop.set()

    def run(self) -> None:
        try:
            self._check_exists()
            self.place = self.loop.run_until_complete(self._wait_for_place())
            if self.place is None:
                return  # told to stop while waiting
            self.loop.run_until_complete(self._acquire(self.place))
            _emit("acquired", place=self.place, tags=self.session.places[self.place].tags, **self._network_service())
            self.loop.run_until_complete(self._hold())
        finally:
            self.loop.run_until_complete(self._give_back())

    def _check_exists(self) -> None:
        """A place that does not exist, or tags no place has, would wait forever in the queue: say so now."""
        places = self.session.places
        wanted = ({"name": self.address.place} if self.address.place else {}) | self.address.tags
        if not any(wanted.items() <= ({"name": name} | place.tags).items() for name, place in places.items()):
            known = "; ".join(f"{name} {place.tags or '(no tags)'}" for name, place in sorted(places.items()))
            asked = ", ".join(f"{key}={value}" for key, value in wanted.items())
            raise NcapError(f"no place on the labgrid coordinator {self.address.coordinator} matches {asked}; "
                            f"it has: {known or 'no places'}")

    async def _wait_for_place(self) -> str | None:
        from labgrid.remote.common import Reservation, ReservationState
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        wanted = ({"name": self.address.place} if self.address.place else {}) | self.address.tags
        response = await self.session.stub.CreateReservation(pb2.CreateReservationRequest(
            filters={"main": pb2.Reservation.Filter(filter=wanted)}, prio=0.0))
        self.token = response.reservation.token
        started = time.monotonic()
        last_report = started - PROGRESS_EVERY_S  # the first wait is reported at once
        while not self.stop.is_set():
            polled = await self.session.stub.PollReservation(pb2.PollReservationRequest(token=self.token))
            reservation = Reservation.from_pb2(polled.reservation)
            if reservation.state is ReservationState.allocated:
                return reservation.allocations["main"][0]
            if reservation.state is not ReservationState.waiting:
                raise NcapError(f"labgrid's reservation {self.token} for {self.address.wanted} became "
                                f"{reservation.state.name}; rerun")
            waited = time.monotonic() - started
            if waited >= self.address.timeout_s:
                raise NcapError(f"{self.address.wanted} did not come free within {self.address.timeout_s:g} s "
                                f"({self._who_holds()}); wait for it or ask its holder to release it "
                                "(labgrid-client -p PLACE release), or give the run a longer ?timeout=SECONDS")
            if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = time.monotonic()
                _emit("waiting", message=f"still waiting for {self.address.wanted} after {waited:.0f} s of "
                                         f"{self.address.timeout_s:g} s ({self._who_holds()})")
            try:
                await asyncio.wait_for(self.stop.wait(), timeout=1.0)  # labgrid's own client polls once a second
            except TimeoutError:
                pass
        return None

    def _who_holds(self) -> str:
        wanted = ({"name": self.address.place} if self.address.place else {}) | self.address.tags
        busy = []
        for name, place in sorted(self.session.places.items()):
            if wanted.items() <= ({"name": name} | place.tags).items():
                since = dt.datetime.fromtimestamp(place.changed, dt.UTC).isoformat(timespec="seconds")
                holder = (f"acquired by {place.acquired} since {since}" if place.acquired
                          else "reserved for another run" if place.reservation else "free")
                busy.append(f"{name}: {holder}")
        return "; ".join(busy)

    async def _acquire(self, place: str) -> None:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        await self.session.stub.AcquirePlace(pb2.AcquirePlaceRequest(placename=place))
        await self.session.sync_with_coordinator()

    def _network_service(self) -> dict[str, Any]:
        place = self.session.places[self.place]
        services = [resource for (_, cls), resource in self.session.get_target_resources(place).items()
                    if cls == "NetworkService"]
        if not services:
            raise NcapError(f"place {self.place} has no NetworkService, so there is no board to reach over SSH; "
                            "publish one on its exporter and add it: labgrid-client -p "
                            f"{self.place} add-match EXPORTER/GROUP/NetworkService")
        params = services[0].params
        return {"address": params["address"], "port": params.get("port", 22), "username": params["username"],
                "password": params.get("password")}

    async def _hold(self) -> None:
        """Until the run closes stdin (or the coordinator goes away: then there is nothing left to release)."""
        stopping = asyncio.ensure_future(self.session.stopping.wait())
        await asyncio.wait([asyncio.ensure_future(self.stop.wait()), stopping], return_when=asyncio.FIRST_COMPLETED)

    async def _give_back(self) -> None:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        if self.session.stopping.is_set():
            return  # the coordinator is gone; a restarted one starts with no reservations
        # the reservation goes first: the coordinator schedules the queue on each change, and a place counts as free
        # only once it is neither acquired nor reserved, so the release then hands it to the next run at once
        # (the other order leaves it to the coordinator's next 15 s scheduling round)
        if self.token is not None:
            await self.session.stub.CancelReservation(pb2.CancelReservationRequest(token=self.token))
        if self.place is not None and self.session.places.get(self.place) and self.session.places[self.place].acquired:
            await self.session.stub.ReleasePlace(pb2.ReleasePlaceRequest(placename=self.place))
        await self.session.sync_with_coordinator()
        if self.place is not None:
            _emit("released", place=self.place)


def main() -> None:
    logging.disable(logging.CRITICAL)  # labgrid logs a lost coordinator itself; the run hears it as an event
    arguments = argparse.ArgumentParser(description="Hold a labgrid place for a dms-ncap run (see the docstring)")
    arguments.add_argument("address", help="the LabAddress as JSON")
    address = LabAddress(**json.loads(arguments.parse_args().address))
    try:
        _Holder(address).run()
    except NcapError as exc:
        _emit("error", message=str(exc))
        sys.exit(2)
    except Exception as exc:  # a gRPC error names the coordinator's refusal: one line for the run, no traceback
        details = exc.details() if hasattr(exc, "details") else f"{type(exc).__name__}: {exc}"
        _emit("error", message=f"labgrid refused {address.wanted} on {address.coordinator}: {details}")
        sys.exit(2)


if __name__ == "__main__":
    main()
