"""The box never imports torch, transformers or optimum (hard rule of the design)."""
import json
import subprocess
import sys

SCRIPT = r"""
import json, sys
from appliance import create_app
app = create_app(data_dir=sys.argv[1])
client = app.test_client()
resp = client.post("/api/v1/answers", json={"exercise_id": "sci-states-of-matter-1",
    "answer": "it turns to steam", "class_id": "c", "nickname": "n"})
assert resp.status_code == 201, resp.get_json()
from appliance.store import Outbox
from appliance.config import load_config
assert Outbox(load_config(sys.argv[1]).outbox_dir).count() == 1
import appliance.cli  # the box's CLI too
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("torch", "transformers", "optimum", "export", "training"))
print(json.dumps({"heavy": heavy, "modules": len(sys.modules)}))
"""


def test_grading_and_recording_import_nothing_heavy(box_dir):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(box_dir)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
