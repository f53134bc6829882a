"""Platform profiles: every shipped profile loads; a malformed one is an error naming file and field."""
from __future__ import annotations

import pytest
import yaml

from harness.errors import NcapError
from harness.platform import known_platforms, parse_platform, platforms_dir

VALID = {"name": "chip", "description": "a chip", "kind": "target", "precisions": ["int8"],
         "runtime": {"name": "onnxruntime"},
         "peak_tops": {"int8": {"value": 8, "source": "vendor datasheet"}},
         "memory_bandwidth_gbs": {"value": 17, "source": "vendor datasheet"}}


def test_every_shipped_profile_is_valid_and_sources_its_figures():
    assert {"host", "qcs8255", "tda4vm", "imx8", "cv22", "orin-x"} <= set(known_platforms())
    for name in known_platforms():
        platform = parse_platform(platforms_dir() / f"{name}.yaml")
        assert all(figure.source for figure in platform.peak_tops.values())


@pytest.mark.parametrize("change, field", [
    (lambda p: p.pop("runtime"), "field runtime: Field required"),
    (lambda p: p["peak_tops"]["int8"].pop("source"), "field peak_tops.int8.source: Field required"),
    (lambda p: p["peak_tops"]["int8"].update(value=-8), "field peak_tops.int8.value: Input should be greater than 0"),
    (lambda p: p["memory_bandwidth_gbs"].update(value=-1), "field memory_bandwidth_gbs.value: Input should be greater"),
    (lambda p: p.update(device="telnet://board"), "field device: String should match pattern"),
])
def test_a_malformed_profile_names_file_and_field(tmp_path, change, field):
    profile = yaml.safe_load(yaml.safe_dump(VALID))
    change(profile)
    path = tmp_path / "chip.yaml"
    path.write_text(yaml.safe_dump(profile))
    with pytest.raises(NcapError) as raised:
        parse_platform(path)
    assert str(raised.value).startswith(f"{path}: {field}")
