"""Settings: precedence (flags > env > llmlens.toml > defaults), clear errors, and every setting documented."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from llmlens.settings import SETTINGS_HELP, Settings, SettingsError, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    for f in fields(Settings):
        assert f.name in SETTINGS_HELP, f"{f.name} has no help text in SETTINGS_HELP"
        assert f"`LLMLENS_{f.name.upper()}`" in text, f"README's configuration table lacks {f.name}"
        assert f"| `{f.name}` |" in text, f"README's configuration table lacks {f.name}"


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    config = tmp_path / "llmlens.toml"
    config.write_text('port = 5000\nproject = "from-file"\nsql_timeout_s = 5\n[upstreams]\nvllm = "http://x/v1"\n')
    env = {"LLMLENS_PORT": "6000", "LLMLENS_DEMO": "true"}
    s = load_settings(config, env=env, overrides={"port": 7000})
    assert s.port == 7000 and s.demo is True and s.project == "from-file" and s.sql_timeout_s == 5.0
    assert s.upstreams == {"vllm": "http://x/v1"}
    assert load_settings(config, env=env).port == 6000
    assert load_settings(None, env={"LLMLENS_CONFIG": str(config)}).port == 5000


@pytest.mark.parametrize(
    ("toml", "env", "fragment"),
    [
        ("nope = 1\n", {}, "unknown setting 'nope'"),
        ("port = [\n", {}, "not valid TOML"),
        ("", {"LLMLENS_PORT": "eighty"}, "port from $LLMLENS_PORT"),
        ("", {"LLMLENS_UPSTREAMS": "[1]"}, "upstreams from $LLMLENS_UPSTREAMS"),
        ("port = 70000\n", {}, "port must be"),
    ],
)
def test_bad_values_name_the_setting_and_the_source(
    tmp_path: Path, toml: str, env: dict[str, str], fragment: str
) -> None:
    config = tmp_path / "llmlens.toml"
    config.write_text(toml)
    with pytest.raises(SettingsError, match=fragment.replace("$", r"\$").replace("[", r"\[")):
        load_settings(config, env=env)
