"""Inference on the box: onnxruntime + tokenizers + numpy, nothing heavier."""
