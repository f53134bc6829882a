"""Projection: latency and memory of an ONNX graph on a platform with no device attached.

Two latency methods. Where a platform has a predictor file, the kernel-level predictor: `kernels` lists the
kernels ONNX Runtime really runs (after its fusions) with their features, `blocks` builds the synthetic CNN
blocks that `profiling` times within a budget (adaptive sampling), and `predictor` fits one regressor per kernel
type and sums a network's kernels. Elsewhere the roofline, the fallback: `graph` counts each layer's operations
and bytes, `roofline` turns them into time on a platform, `calibration` solves a chip's efficiency on the
article's figure, and `host` measures the host's own roofline. `validate` checks both against host measurement.
"""
