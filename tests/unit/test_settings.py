"""Settings: defaults, one clear line per wrong setting, the generated key."""

import os
import re
from pathlib import Path

import pytest

from services.infra.settings import Settings, SettingsError

EXAMPLE = Path(__file__).parents[2] / "deploy" / "dualrandom.env.example"


def test_defaults_are_the_embedded_ones() -> None:
    s = Settings.from_env({})
    assert s.effective_database_url == "sqlite:///var/dualrandom.db" and s.nats_url == ""
    assert (s.host, s.port, s.log_format) == ("127.0.0.1", 8000, "console")


@pytest.mark.parametrize(
    ("key", "value"),
    [("DATABASE_URL", "mysql://x"), ("NATS_URL", "http://x"), ("PORT", "eighty"), ("LOG_FORMAT", "xml"),
     ("PROJECTIONS_IN_PROCESS", "maybe"), ("NATS_EMBEDDED_PORT", "70000")],
)
def test_a_wrong_setting_is_named_in_one_line(key: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({f"DUALRANDOM_{key}": value})
    assert str(err.value).startswith(f"DUALRANDOM_{key}:") and "\n" not in str(err.value)


def test_the_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    s = Settings(var_dir=tmp_path).with_secret()
    assert len(s.secret_key) >= 32
    assert Settings(var_dir=tmp_path).with_secret().secret_key == s.secret_key
    assert oct(os.stat(tmp_path / "secret.key").st_mode & 0o777) == "0o600"
    assert s.secret_key not in repr(s)
    with pytest.raises(SettingsError):
        Settings(secret_key="short").with_secret()


def test_the_example_environment_file_lists_every_setting_with_its_default() -> None:
    text = EXAMPLE.read_text()
    documented = dict(re.findall(r"^(DUALRANDOM_\w+)=(.*)$", text, re.M))
    defaults = Settings.from_env({})
    assert Settings.from_env(documented) == defaults
    fields = {f.upper() for f in Settings.__dataclass_fields__}
    names = {k.removeprefix("DUALRANDOM_") for k in documented}
    renamed = {"MAX_UPLOAD_MB": "MAX_UPLOAD_BYTES", "MAX_JSON_KB": "MAX_JSON_BYTES"}
    assert {renamed.get(n, n) for n in names} == fields
