"""PyTorch-level passes: they change the network itself (fusion, pruning, distillation, QAT), so they
need the zoo's PyTorch model behind a card, and they come before the ONNX-level precision passes.

A structural pass writes its ONNX export and, beside it, the pickled module (`module.pt`), so the
next PyTorch pass of a recipe continues from that network rather than from the original one.
"""
