"""onnxruntime sessions set up for a small box: CUDA if it really works, else CPU.

Threads match the cores and do not spin: a spinning pool burns the CPU that
the web server and the other requests need between inferences.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)


def session_options(threads: int = 0) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or (os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


_cuda_works: bool | None = None  # probed once per process: a failed probe is slow and noisy


def create_session(model_path: Path, threads: int = 0) -> ort.InferenceSession:
    """A session on CUDA when the provider is present *and* loads, else on the CPU."""
    global _cuda_works
    path = str(model_path)
    if _cuda_works is not False and "CUDAExecutionProvider" in ort.get_available_providers():
        # onnxruntime-gpu on a box without the CUDA runtime logs errors while it falls back;
        # that is the normal case on a CPU-only box, so keep it out of the logs.
        ort.set_default_logger_severity(4)
        try:
            session = ort.InferenceSession(
                path, session_options(threads),
                providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
            # get_device() reports what the build supports; get_providers() what this session uses.
            _cuda_works = "CUDAExecutionProvider" in session.get_providers()
            if _cuda_works:
                log.info("inference on CUDA: %s", path)
                return session
        except Exception as exc:  # onnxruntime raises its own untyped errors here
            _cuda_works = False
            log.info("CUDA provider unusable (%s); using the CPU", exc)
        finally:
            ort.set_default_logger_severity(2)
        log.info("CUDA runtime not usable here; inference on the CPU")
    return ort.InferenceSession(path, session_options(threads), providers=["CPUExecutionProvider"])
