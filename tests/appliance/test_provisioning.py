"""A technician's first hour: provision into a root, verify the units, start what they start."""
import os
import re
import shlex
import shutil
import subprocess
import time

import pytest

from appliance.config import load_config
from appliance.models import current_bundle_dir
from appliance.store.teachers import TeacherAccounts
from helpers import free_port, request
from tests_cli import run_chalkbox

UNITS = ("chalkbox-web.service", "chalkbox-worker.service", "chalkbox-firstboot.service")


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    return root


def provisioning_file(path, keypair, bundle, port, **extra):
    lines = ['school_id = "school-7"', f'public_key = "{keypair[1]}"', f'bundle = "{bundle}"',
             'content = "demo"', f"port = {port}", 'central_url = "http://127.0.0.1:9"',
             'token = "t0ken"', "", "[teacher]", 'username = "ms-okafor"',
             'password = "correct horse battery"']
    lines[0:0] = [f"{k} = {v!r}".replace("'", '"') for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def unit_command(unit_path):
    """ExecStart and Environment of a unit, as systemd would run them."""
    text = unit_path.read_text()
    argv = shlex.split(re.search(r"^ExecStart=(.*)$", text, re.M).group(1))
    env = dict(line.split("=", 1) for line in re.findall(r"^Environment=(.*)$", text, re.M))
    return argv, env


def test_unattended_provisioning_installs_units_that_verify_and_run(tmp_path, root, keypair,
                                                                   grade_bundle):
    data_dir = root / "var" / "lib" / "chalkbox"
    port = free_port()
    spec = provisioning_file(tmp_path / "provision.toml", keypair, grade_bundle, port)
    done = run_chalkbox("box", "provision", "--data-dir", data_dir, "--from-file", spec,
                        "--root", root)
    assert done.returncode == 0, done.stderr
    assert not spec.exists()  # applied once: it held a token and a password
    config = load_config(data_dir)
    assert config.school_id == "school-7" and config.port == port
    assert config.token_path.read_text().strip() == "t0ken"
    assert oct(config.token_path.stat().st_mode)[-3:] == "600"
    assert TeacherAccounts(config.teachers_path).verify("ms-okafor", "correct horse battery")
    assert current_bundle_dir(config.models_dir).name.endswith("1.0.0")
    units = [root / "etc/systemd/system" / name for name in UNITS]
    verify = subprocess.run(["systemd-analyze", "verify", *map(str, units)],
                            capture_output=True, text=True)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    text = units[1].read_text()
    for directive in ("Type=exec", "KillSignal=SIGINT", "ProtectSystem=strict", "PrivateTmp=yes",
                      "NoNewPrivileges=yes", "Restart=on-failure", f"ReadWritePaths={data_dir}"):
        assert directive in text
    assert int(re.search(r"TimeoutStopSec=(\d+)", text).group(1)) >= 600
    assert "\nu chalkbox - " in (root / "usr/lib/sysusers.d/chalkbox.conf").read_text()

    # start the real services exactly as the units say (as if inside that root)
    processes = []
    try:
        for unit in units[:2]:
            argv, env = unit_command(unit)
            processes.append(subprocess.Popen(
                argv, env={**os.environ, **env, "CHALKBOX_ROOT": str(root)},
                stdout=open(tmp_path / f"{unit.name}.log", "wb"), stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if request("GET", f"http://127.0.0.1:{port}/readyz", timeout=2)[0] == 200 \
                        and (config.worker_dir / "heartbeat").exists():
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert request("GET", f"http://127.0.0.1:{port}/readyz")[0] == 200
        assert (config.worker_dir / "heartbeat").exists()
        assert load_config(data_dir).box_id == config.box_id  # same machine: same identity
    finally:
        for process in processes:
            process.send_signal(2)
        for process in processes:
            process.wait(30)


def test_provisioning_again_keeps_identity_and_data(box_dir, keypair):
    before = load_config(box_dir)
    done = run_chalkbox("box", "provision", "--data-dir", box_dir, "--school-id",
                        before.school_id, "--public-key", keypair[1], "--port", "9999")
    assert done.returncode == 0, done.stderr
    after = load_config(box_dir)
    assert after.box_id == before.box_id and after.port == 9999
    assert current_bundle_dir(after.models_dir).exists()


@pytest.mark.parametrize("extra_line, needle", [
    ('schol_id = "typo"', "unknown field"),
    ('port = "eighty"', "'port'"),
    ('school_secret = "xyz"', "school_secret"),
])
def test_a_bad_provisioning_file_is_refused_and_kept(tmp_path, keypair, grade_bundle,
                                                     extra_line, needle):
    spec = provisioning_file(tmp_path / "p.toml", keypair, grade_bundle, free_port())
    text = spec.read_text()
    if extra_line.startswith("port"):
        text = re.sub(r"^port = \d+$", extra_line, text, flags=re.M)
    else:
        text = extra_line + "\n" + text
    spec.write_text(text)
    done = run_chalkbox("box", "provision", "--data-dir", tmp_path / "box", "--from-file", spec)
    assert done.returncode != 0
    line, = done.stderr.strip().splitlines()
    assert needle in line and "(hint:" in line
    assert spec.exists() and not (tmp_path / "box" / "box.toml").exists()


def test_a_bundle_signed_by_another_key_is_refused_and_the_box_keeps_its_model(
        box_dir, grade_bundle, tmp_path):
    from export.keys import keygen, sign_bundle

    other_private, _ = keygen(tmp_path / "other.pem")
    foreign = tmp_path / "foreign"
    shutil.copytree(grade_bundle, foreign)
    sign_bundle(foreign, other_private)
    before = current_bundle_dir(load_config(box_dir).models_dir)
    done = run_chalkbox("box", "model", "install", "--data-dir", box_dir, foreign)
    assert done.returncode != 0 and "signature" in done.stderr
    assert current_bundle_dir(load_config(box_dir).models_dir) == before


def test_a_cloned_image_gets_a_new_identity(box_dir, tmp_path, root):
    from appliance.identity import ensure_identity
    from appliance.records import InteractionRecord
    from appliance.store import open_outbox

    config = load_config(box_dir)
    config.token_path.write_text("old-box-token\n")
    open_outbox(config).append(InteractionRecord.create(box_id=config.box_id,
                                                        school_id=config.school_id, kind="grade"))
    refused = run_chalkbox("box", "deprovision", "--data-dir", box_dir)
    assert refused.returncode != 0 and "have not reached the centre" in refused.stderr
    assert run_chalkbox("box", "deprovision", "--data-dir", box_dir, "--force").returncode == 0
    image = tmp_path / "image"
    shutil.copytree(box_dir, image)
    clones = []
    for machine in ("a" * 32, "b" * 32):
        (root / "etc" / "machine-id").write_text(machine)
        copy = tmp_path / f"clone-{machine[0]}"
        shutil.copytree(image, copy)
        clone, renewed = ensure_identity(load_config(copy), root)
        assert renewed and clone.box_id.startswith("box-")
        assert not clone.token_path.exists() and not list(clone.outbox_dir.glob("segment-*"))
        assert ensure_identity(load_config(copy), root) == (clone, False)  # stable afterwards
        clones.append(clone.box_id)
    assert len({config.box_id, *clones}) == 3
    # the copied data dir moved to another machine is a clone too
    moved, renewed = ensure_identity(load_config(tmp_path / "clone-a"),
                                     tmp_path / "elsewhere")
    assert renewed and moved.box_id != clones[0]


def test_the_model_can_come_from_a_usb_stick(tmp_path, keypair, grade_bundle):
    mount_root = tmp_path / "media"
    school_dir = mount_root / "KINGSTON" / "chalkbox-models" / "school-7" / "grade"
    shutil.copytree(grade_bundle, school_dir / grade_bundle.name)
    shutil.copytree(grade_bundle, mount_root / "KINGSTON" / "chalkbox-models" / "other" / "grade"
                    / "not-ours")
    done = run_chalkbox("box", "provision", "--data-dir", tmp_path / "box", "--school-id",
                        "school-7", "--public-key", keypair[1], "--bundle", "usb",
                        "--usb-mount-root", mount_root)
    assert done.returncode == 0, done.stderr
    assert current_bundle_dir(load_config(tmp_path / "box").models_dir).name.endswith("1.0.0")
    nothing = run_chalkbox("box", "provision", "--data-dir", tmp_path / "box2", "--school-id",
                           "school-8", "--public-key", keypair[1], "--bundle", "usb",
                           "--usb-mount-root", mount_root)
    assert nothing.returncode != 0 and "no model bundle for school school-8" in nothing.stderr
