"""What leaves the box: pseudonyms only, opted-out students never, free text scrubbed."""
import pytest

from appliance.config import load_config
from appliance.errors import ConfigError
from appliance.privacy import ensure_secret, pseudonym, scrub_text
from appliance.service import BoxService
from appliance.sync.usb import export_to_stick
from appliance.syncbundle import read_sync_bundle
from tests_cli import run_chalkbox


@pytest.mark.parametrize("text, expected", [
    ("mail me at ana.b+x@school.org please", "mail me at [email] please"),
    ("call +44 20 7946 0958 or 555-123-4567", "call [phone] or [phone]"),
    ("Mei said water boils", "[name] said water boils"),
    ("meiosis is cell division", "meiosis is cell division"),  # names only as whole words
    ("it boils at 100 degrees in 2024", "it boils at 100 degrees in 2024"),
])
def test_scrub_text(text, expected):
    assert scrub_text(text, names=["Mei"]) == expected


def test_opted_out_students_stay_on_the_box_and_names_are_scrubbed(box_dir, tmp_path):
    config = load_config(box_dir)
    service = BoxService(config)
    for nickname, answer in [("Mei", "Mei thinks it evaporates"), ("Tom", "steam, ask Tom"),
                             ("Zoe", "it boils")]:
        service.submit_answer(exercise_id="sci-states-of-matter-1", answer=answer,
                              class_id="4b", nickname=nickname)
    result = run_chalkbox("box", "opt-out", "--data-dir", box_dir, "--class-id", "4b",
                          "--nickname", "zoe")
    assert result.returncode == 0, result.stderr
    stick = tmp_path / "stick"
    stick.mkdir()
    exported = export_to_stick(service.outbox, config, stick)
    manifest, records = read_sync_bundle(exported.path)
    answers = sorted(r.texts["answer"] for r in records)
    assert answers == ["[name] thinks it evaporates", "steam, ask [name]"]
    assert all(r.student.startswith("s-") for r in records)
    raw = (exported.path / "records.jsonl").read_text()
    assert "Mei" not in raw and "Tom" not in raw and "4b" in raw  # the class code stays
    # the centre's ack of this bundle's range also settles the opted-out record between
    service.outbox.acknowledge(manifest["outbox_from"], manifest["outbox_to"])
    assert service.outbox.pending() == []
    assert len(list(service.outbox.records())) == 3  # ... and still on the box


def test_a_school_secret_gives_one_pseudonym_across_boxes(tmp_path):
    secret = bytes(range(32))
    a, b = ensure_secret(tmp_path / "a", secret), ensure_secret(tmp_path / "b", secret)
    assert pseudonym(a, "4b", "Mei") == pseudonym(b, "4B", " mei ")
    assert pseudonym(ensure_secret(tmp_path / "c"), "4b", "Mei") != pseudonym(a, "4b", "Mei")
    with pytest.raises(ConfigError, match="different secret"):
        ensure_secret(tmp_path / "a", bytes(32))
    with pytest.raises(ConfigError, match="32 bytes"):
        ensure_secret(tmp_path / "d", b"short")
