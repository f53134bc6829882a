"""Write a scripted scenario as a user's recording (docs/scenarios.md, "A user's recording"): the frames as PNGs,
scenario.yaml, and the ground truth as labels.csv or as OpenLABEL actions (the `vcd` package, as the Driver
Monitoring Dataset writes them). An example of the format, and the input of a run that plays a recording:

    python benchmarks/scenario_recording.py OUT [--state long_distraction] [--index 0] [--annotations csv|openlabel]
    pytest -m scenario suites/test_scenarios.py --ncap-scenario-recording OUT
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

from PIL import Image

from harness.data.synthetic import ATTENTIVE, CLASSES, EYES_CLOSED, LOOKING_AWAY, PHONE_USE, YAWNING
from harness.scenarios import sequences as scripted
from harness.scenarios.protocol import load_protocol

# driver state -> the OpenLABEL action type the Driver Monitoring Dataset uses for it
ACTION_TYPES = {EYES_CLOSED: "eyes_state/close", PHONE_USE: "driver_actions/phonecall_right",
                LOOKING_AWAY: "gaze_on_road/not_looking_road", YAWNING: "yawning/Yawning without hand"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--state", default="long_distraction", choices=scripted.SCRIPTED)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--annotations", choices=("csv", "openlabel"), default="csv")
    args = parser.parse_args()
    sequence = scripted.build(args.state, args.index, load_protocol())
    (args.out / "frames").mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(scripted.frames(sequence)):
        Image.fromarray(frame).save(args.out / "frames" / f"{i:06d}.png")
    (args.out / "scenario.yaml").write_text(f"state: {args.state}\nfps: {sequence.fps:g}\n")
    if args.annotations == "csv":
        with (args.out / "labels.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["frame", "state"])
            writer.writerows((i, CLASSES[label]) for i, label in enumerate(sequence.labels))
    else:
        write_openlabel(sequence.labels, args.out / "annotations.json")
    print(f"{args.out}: {len(sequence.labels)} frames of {sequence.name} ({args.annotations})")


def write_openlabel(labels: tuple[int, ...], path: Path) -> None:
    """One action per run of a non-attentive state, with its frame interval."""
    from vcd import core

    document, start = core.OpenLABEL(), 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start] != ATTENTIVE:
                document.add_action(CLASSES[labels[start]], semantic_type=ACTION_TYPES[labels[start]],
                                    frame_value=(start, i - 1))
            start = i
    document.save(str(path))


if __name__ == "__main__":
    main()
