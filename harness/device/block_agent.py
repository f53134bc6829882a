"""The device-side half of `ncap profile --device`: `python -m harness.device.block_agent BLOCKS.json` on the board.

Each block model the manifest names is timed (its unprofiled wall time) and profiled layer by layer with ONNX
Runtime, exactly as the host profiles its own blocks, and streamed back as one JSON line per block. Like the
compliance agent it needs only numpy and ONNX Runtime on the board.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

from harness.errors import NcapError
from harness.runtimes.onnxruntime.profile import standard_normal, time_and_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path,
                        help='JSON list of {"file": MODEL.onnx, "shape": [1, C, H, W], "evict_bytes": N}')
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    try:
        for index, entry in enumerate(json.loads(args.manifest.read_text())):
            feeds = {"x": standard_normal(entry["shape"])}
            wall_s, events, graph = time_and_profile(args.manifest.parent / entry["file"], feeds, args.threads,
                                                     entry.get("evict_bytes", 0))
            print(json.dumps({"event": "block", "index": index, "wall_s": wall_s, "events": events,
                              "graph": base64.b64encode(graph).decode()}), flush=True)
    except NcapError as exc:
        print(json.dumps({"event": "error", "message": str(exc)}), flush=True)
        sys.exit(2)
    print(json.dumps({"event": "done"}), flush=True)


if __name__ == "__main__":
    main()
