"""The whole loop, as a user runs it: `chalkbox demo` on a tiny random BERT.

Real Trainer, optimum export, int8 quantization, signing, provisioning, gunicorn on
loopback, a graded answer written to TinyDB, a sync bundle, a central ingest twice.
"""
import re
import sqlite3
import subprocess
import sys

import pytest

from helpers import free_port


@pytest.mark.slow
def test_demo_runs_the_whole_loop(tiny_base, tmp_path):
    work = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "demo", "--workdir", str(work), "--base-model",
         str(tiny_base), "--epochs", "6", "--lr", "1e-3", "--port", str(free_port()), "--no-serve"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"-> (correct|incorrect) \(\d+%\)", out)
    assert re.search(r"stick -> centre: 2 new; ingesting again adds 0; central store holds 2 "
                     r"records", out), out
    # the interaction really is in the box's TinyDB outbox and in the central SQLite store
    segments = list((work / "box" / "outbox").glob("segment-*.json"))
    assert segments and '"kind":"answer"' in segments[0].read_text()
    with sqlite3.connect(work / "central" / "chalkbox.db") as db:
        assert db.execute("SELECT kind FROM records ORDER BY id").fetchall() == [
            ("answer",), ("question",)]
    assert "http://127.0.0.1:" in out
    assert "asks: why is the sky blue" in out
