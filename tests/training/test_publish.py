import json
import shutil

import pytest
from tests_cli import run_chalkbox

from appliance.bundle import verify_bundle
from export.keys import keygen, sign_bundle
from training.errors import TrainingError
from training.publish import latest, publish


def version_of(bundle, tmp_path, version, key):
    """A copy of the real bundle with another version, signed again with ``key``."""
    out = tmp_path / f"bundle-{version}"
    shutil.copytree(bundle, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["version"] = version
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    sign_bundle(out, key)
    return out


def test_publish_copies_a_verified_bundle_and_points_latest_at_it(tmp_path, grade_bundle, keypair):
    root = tmp_path / "published"
    dest = publish(grade_bundle, root, keypair[1])
    assert dest == root / "all" / "grade" / "grade-tiny-1.0.0"
    assert (root / "all" / "grade" / "LATEST").read_text() == "grade-tiny-1.0.0\n"
    assert verify_bundle(dest, keypair[1]).version == "1.0.0"
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]
    assert latest(root, "grade", "school-1") == dest
    assert latest(root, "match", "school-1") is None
    # publishing the same bundle again changes nothing and stays valid
    assert publish(grade_bundle, root, keypair[1]) == dest


def test_a_schools_own_bundle_wins_over_all(tmp_path, grade_bundle, keypair):
    root = tmp_path / "published"
    publish(grade_bundle, root, keypair[1])
    newer = version_of(grade_bundle, tmp_path, "2.0.0", keypair[0])
    mine = publish(newer, root, keypair[1], school_id="school-1")
    assert mine == root / "school-1" / "grade" / "grade-tiny-2.0.0"
    assert latest(root, "grade", "school-1") == mine
    assert latest(root, "grade", "school-2").name == "grade-tiny-1.0.0"
    assert latest(root, "grade", None).name == "grade-tiny-1.0.0"


def test_latest_follows_the_last_publish_so_republishing_rolls_back(tmp_path, grade_bundle, keypair):
    root = tmp_path / "published"
    publish(grade_bundle, root, keypair[1])
    publish(version_of(grade_bundle, tmp_path, "2.0.0", keypair[0]), root, keypair[1])
    assert latest(root, "grade", None).name == "grade-tiny-2.0.0"
    publish(grade_bundle, root, keypair[1])
    assert latest(root, "grade", None).name == "grade-tiny-1.0.0"


def test_unverified_bundles_are_refused_and_nothing_is_published(tmp_path, grade_bundle, keypair):
    root = tmp_path / "published"
    _, stranger = keygen(tmp_path / "other.pem")
    with pytest.raises(TrainingError, match="refusing to publish"):
        publish(grade_bundle, root, stranger)
    tampered = tmp_path / "tampered"
    shutil.copytree(grade_bundle, tampered)
    with open(tampered / "tokenizer.json", "a") as fh:
        fh.write(" ")
    with pytest.raises(TrainingError, match="tokenizer.json"):
        publish(tampered, root, keypair[1])
    assert not root.exists() or not any(root.rglob("LATEST"))


def test_one_name_never_means_two_bundles(tmp_path, grade_bundle, keypair):
    root = tmp_path / "published"
    publish(grade_bundle, root, keypair[1])
    same_name = tmp_path / "same-name"
    shutil.copytree(grade_bundle, same_name)
    manifest = json.loads((same_name / "manifest.json").read_text())
    manifest["metrics"] = {"changed": 1}
    (same_name / "manifest.json").write_text(json.dumps(manifest))
    sign_bundle(same_name, keypair[0])
    with pytest.raises(TrainingError, match="different bundle named") as info:
        publish(same_name, root, keypair[1], school_id="school-1")
    assert "bump the version" in info.value.hint


@pytest.mark.parametrize("school", ["all", "../x", "a/b"])
def test_scope_names_are_checked(tmp_path, grade_bundle, keypair, school):
    with pytest.raises(TrainingError, match="published scope"):
        publish(grade_bundle, tmp_path / "published", keypair[1], school_id=school)


def test_a_latest_file_naming_junk_is_ignored(tmp_path, grade_bundle, keypair):
    root = tmp_path / "published"
    publish(grade_bundle, root, keypair[1])
    (root / "all" / "grade" / "LATEST").write_text("../../etc\n")
    assert latest(root, "grade", None) is None
    assert latest(root, "../grade", None) is None


def test_cli_publishes_for_a_school(tmp_path, grade_bundle, keypair):
    centre = tmp_path / "centre"
    done = run_chalkbox("train", "publish", grade_bundle, "--centre-dir", centre,
                        "--public-key", keypair[1], "--school-id", "school-1")
    assert done.returncode == 0, done.stderr
    assert latest(centre / "published", "grade", "school-1").parent.parent.name == "school-1"
    refused = run_chalkbox("train", "publish", grade_bundle, "--centre-dir", centre,
                           "--public-key", keypair[0])
    assert refused.returncode == 1 and "refusing to publish" in refused.stderr
