import pytest

from appliance.config import BoxConfig, load_config, to_toml
from appliance.errors import ConfigError


def test_defaults_then_file_then_flags(tmp_path):
    (tmp_path / "box.toml").write_text(to_toml({"box_id": "b1", "school_id": "s1", "port": 9000,
                                                "review_below": 0.5}))
    config = load_config(tmp_path, {"port": 9100, "threads": None})
    assert (config.box_id, config.port, config.review_below) == ("b1", 9100, 0.5)
    assert config.threads == BoxConfig(data_dir=tmp_path).threads


def test_missing_file_says_to_provision(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "provision" in info.value.hint


@pytest.mark.parametrize("text, needle", [
    ("prot = 80\n", "prot"), ('port = "80"\n', "port"), ("port = 0\n", "port"),
    ("port = [\n", "TOML"), ("workers = true\n", "workers"),
    ('box_id = "../etc"\n', "box_id"), ('central_url = "ftp://x"\n', "central_url"),
    ("review_window_days = 0.5\n", "review_window_days"),  # under a day: today's reviews
])
def test_bad_settings_are_named(tmp_path, text, needle):
    (tmp_path / "box.toml").write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_config(tmp_path)


def test_toml_round_trip_keeps_every_setting(tmp_path):
    config = BoxConfig(data_dir=tmp_path, box_id="box-1", school_id="s", review_below=0.25,
                       usb_mount_root='/media/a "quoted" \\ path')
    (tmp_path / "box.toml").write_text(to_toml(config.settings()))
    assert load_config(tmp_path) == config
