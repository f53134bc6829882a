"""A target platform with no device: projected figures that can pass or fail, and say they are provisional."""
from __future__ import annotations

from test_plugin import FAST, records, suite  # noqa: F401  (the pytester fixture)


def test_a_target_without_device_is_projected_and_provisional(suite, tiny_card, image_folder):  # noqa: F811
    limits = suite.path / "limits.yaml"
    limits.write_text("memory_mb: 0.001\n")  # the projected memory (weights + activations) must break this
    result = suite.runpytest("-m", "ncap", "--platform", "tda4vm", "--model", str(tiny_card), "--dataset",
                             str(image_folder), "--ncap-requirements", str(limits), *FAST)
    written = {r["metric"]: r for r in records(suite) if r["cell"] == "tiny-int8-tda4vm"}
    assert written["latency"]["verdict"] == "pass" and written["latency"]["grade"] == "projected"
    assert "8 TOPS" in written["latency"]["method"] and "not homologation evidence" in written["latency"]["message"]
    assert written["memory"]["verdict"] == "fail" and written["memory"]["grade"] == "projected"
    assert written["power"]["verdict"] == "skip" and "no power envelope" in written["power"]["message"]
    result.stdout.fnmatch_lines(["*projected memory*breaks the limit*not homologation evidence*"])
