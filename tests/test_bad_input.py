"""Property-based bad input: whatever a user writes into a requirements file, a model card, a device address, a
recipe or a baseline, the harness either accepts it as valid or answers with one NcapError line; never another
exception (a traceback) and never a limit that cannot judge (non-finite, or not above zero)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.device.address import DeviceAddress
from harness.errors import NcapError
from harness.gate.baseline import load_baseline
from harness.models.card import load_card
from harness.optimize.recipe import parse_recipe
from harness.requirements import load_requirements

pytestmark = pytest.mark.qualification(kind="bad input")
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), FLOATS, st.text(max_size=12),
                    st.lists(st.integers(-3, 300), max_size=4))
VECTORS = st.lists(st.one_of(FLOATS, st.just(0.5)), min_size=1, max_size=3)


def _accepted_or_clear(load, *args):
    """The loader's result, or None when it refused with an NcapError of one line."""
    try:
        return load(*args)
    except NcapError as exc:
        assert str(exc) and "\n" not in str(exc), str(exc)
        return None


@EXAMPLES
@given(st.dictionaries(st.sampled_from(["latency_ms", "power_w", "memory_mb", "accuracy_drop_pt", "other"]),
                       st.one_of(SCALARS, st.dictionaries(st.sampled_from(["fp16", "int8", "int4", "int3"]), SCALARS,
                                                          max_size=3)), max_size=4))
def test_any_requirements_file_is_valid_limits_or_one_clear_error(tmp_path, document):
    path = tmp_path / "limits.yaml"
    path.write_text(yaml.safe_dump(document))
    requirements = _accepted_or_clear(load_requirements, path)
    if requirements is not None:
        for limit in (requirements.latency_ms, requirements.power_w, requirements.memory_mb):
            assert math.isfinite(limit.value) and limit.value > 0
        assert all(math.isfinite(limit.value) and limit.value >= 0
                   for limit in requirements.accuracy_drop_pt.values())


VALID_CARD = {"name": "net", "onnx": "m.onnx", "classes": ["a", "b", "c"],
              "input": {"layout": "NCHW", "size": [64, 64], "channels": 3, "scale": 0.0039, "mean": [0.5, 0.5, 0.5],
                        "std": [0.5, 0.5, 0.5]}}
CARD_FIELDS = ["name", "onnx", "classes", "input", "input.layout", "input.size", "input.channels", "input.scale",
               "input.mean", "input.std"]


@EXAMPLES
@given(st.lists(st.tuples(st.sampled_from(CARD_FIELDS), st.one_of(SCALARS, VECTORS)), min_size=1, max_size=3))
def test_any_model_card_is_a_card_or_one_clear_error(tmp_path, changes):
    """A valid card with one to three fields replaced by anything."""
    document = json.loads(json.dumps(VALID_CARD))
    for field, value in changes:
        *parents, key = field.split(".")
        target = document
        for parent in parents:
            if not isinstance(target.get(parent), dict):
                target[parent] = {}
            target = target[parent]
        target[key] = value
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(document))
    (tmp_path / "m.onnx").touch()  # the card's file exists, so only the changed fields can make it invalid
    card = _accepted_or_clear(load_card, path)
    if card is not None:
        spec = card.input
        assert all(math.isfinite(v) and v > 0 for v in spec.std) and math.isfinite(spec.scale) and spec.scale > 0
        assert all(math.isfinite(v) for v in spec.mean) and len(card.classes) >= 2


@EXAMPLES
@given(st.one_of(st.text(max_size=40), st.builds("ssh://{}@{}:{}{}".format, st.text(max_size=6),
                                                 st.text(max_size=10), st.text(max_size=6), st.text(max_size=10))))
def test_any_device_address_is_an_address_or_one_clear_error(text):
    address = _accepted_or_clear(DeviceAddress.parse, text)
    if address is not None:
        assert address.host and 0 < address.port < 65536


@EXAMPLES
@given(st.text(alphabet="fp3216intmxdqa:,.0123456789/-e", max_size=24))
def test_any_recipe_text_is_a_recipe_or_one_clear_error(text):
    recipe = _accepted_or_clear(parse_recipe, text)
    if recipe is not None:
        assert recipe[-1].precision is not None


@EXAMPLES
@given(st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                    st.dictionaries(st.sampled_from(["created", "fingerprint", "cells",
                                                                                     "x"]), inner, max_size=4)),
                    max_leaves=10))
def test_any_baseline_file_is_a_baseline_or_one_clear_error(tmp_path, document):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(document))
    _accepted_or_clear(load_baseline, Path(path))
