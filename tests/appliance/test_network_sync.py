"""Network sync against the real centre (gunicorn), through a flapping TCP proxy."""
import json

import pytest

from appliance.config import load_config
from appliance.models import current_bundle_dir
from appliance.provision import ProvisionRequest, provision
from appliance.records import InteractionRecord
from appliance.store import open_outbox
from appliance.sync.errors import SyncError
from appliance.sync.session import load_state, run_sync
from conftest import start_centre
from proxy import FlakyProxy
from tests_cli import run_chalkbox
from training.store import CentralStore


def fill(config, outbox, n):
    return {outbox.append(InteractionRecord.create(
        box_id=config.box_id, school_id=config.school_id, kind="answer",
        texts={"answer": f"answer {i}"}, prediction="correct", confidence=0.8)).id
        for i in range(n)}


@pytest.fixture
def linked_box(box_dir, tmp_path, keypair, build_request_for):
    """A box registered at a live centre that has published model 2.0.0."""
    from export.build import build_bundle

    config = load_config(box_dir)
    newer = tmp_path / "grade-2"
    build_bundle(build_request_for(newer, version="2.0.0", parent_version="1.0.0"))
    centre = start_centre(tmp_path / "centre", {config.box_id: config.school_id},
                          publish_bundles=[newer], public_key=keypair[1])
    yield config, centre
    centre.stop()


def relink(config, url, token, keypair):
    return provision(ProvisionRequest(data_dir=config.data_dir, school_id=config.school_id,
                                      public_key=keypair[1], central_url=url, token=token))


@pytest.mark.slow
def test_flapping_link_delivers_every_record_exactly_once(linked_box, keypair):
    config, centre = linked_box
    proxy = FlakyProxy(centre.port, cut_probability=0.5, refuse_probability=0.15, seed=11)
    try:
        config = relink(config, f"http://127.0.0.1:{proxy.port}", centre.tokens[config.box_id],
                        keypair)
        outbox = open_outbox(config)
        ids = fill(config, outbox, 1300)  # three chunks
        failures = 0
        for _ in range(80):
            try:
                state = run_sync(config, outbox, force=True)
            except SyncError:
                failures += 1
                continue
            if state.stage == "done":
                break
        assert load_state(config).stage == "done"
        assert failures > 0 and proxy.cuts > 0  # the link really did flap
    finally:
        proxy.close()
    with CentralStore(centre.config.store_path) as store:
        assert store.count() == 1300
        assert {r.id for r in store.records()} == ids
    assert outbox.pending() == []
    # the model the centre published was pulled, verified and installed
    assert current_bundle_dir(config.models_dir).name.endswith("2.0.0")
    # ... and the box reported its model and health: the centre's fleet list shows them
    done = run_chalkbox("train", "fleet", "list", "--json", "--centre-dir", centre.config.store_path.parent)
    assert done.returncode == 0, done.stderr
    [row] = [b for b in json.loads(done.stdout) if b["box_id"] == config.box_id]
    assert row["models"]["grade"].endswith("2.0.0") and row["records"] == 1300


def test_a_bad_token_is_refused_and_nothing_is_marked_synced(linked_box, keypair):
    config, centre = linked_box
    config = relink(config, centre.base_url, "not-the-token", keypair)
    outbox = open_outbox(config)
    fill(config, outbox, 10)
    with pytest.raises(SyncError) as info:
        run_sync(config, outbox, force=True)
    assert "401" in info.value.message and "token" in info.value.hint
    assert len(outbox.pending()) == 10
    state = load_state(config)
    assert state.stage == "push" and state.attempts == 1 and state.next_attempt_at > 0
    # not due yet: the next scheduled attempt waits (exponential backoff)
    assert run_sync(config, outbox).attempts == 1
    with CentralStore(centre.config.store_path) as store:
        assert store.count() == 0
    quarantined = list(centre.config.quarantine_dir.iterdir())
    assert quarantined, "the refused push was not quarantined"
