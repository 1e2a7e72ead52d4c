"""Model bundles for the box: ONNX export, int8 quantization, checks, signing.

Builds bundles in the box's own format (appliance.bundle) and measures them with
the box's own inference code. torch and optimum are imported inside the
functions that need them, so ``chalkbox export verify`` works on a lean install.
"""
