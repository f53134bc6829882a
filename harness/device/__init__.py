"""Runs on a real board: the address, the SSH transport, the device-side agent and the host's view of a run."""
