"""Projection: latency and memory of an ONNX graph on a chip with no device attached, from a roofline.

`graph` counts each layer's operations and bytes; `roofline` turns them into time on a platform;
`host` measures the host's own roofline so the method can be checked against host measurements.
"""
