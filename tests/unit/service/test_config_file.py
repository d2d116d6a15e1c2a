"""``zkgrid serve --config FILE``: the TOML file, its errors, and the precedence
flag > environment > file > default; the example deploy/zkgrid.toml is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from service import cli as serve_cli
from service.config import CONFIG_ENV, ENV, ConfigError, ServiceConfig
from service.config_file import SETTINGS, load_config_file

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "zkgrid.toml"


def _write(tmp_path: Path, text: str, name: str = "zkgrid.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_setting_has_a_key_a_variable_and_a_flag() -> None:
    assert set(SETTINGS) == set(ENV)
    flags = {a.dest for a in serve_cli.build_parser()._actions}
    assert set(ENV) <= flags


def test_the_example_configuration_is_accepted(tmp_path: Path) -> None:
    settings = load_config_file(EXAMPLE)
    config = ServiceConfig.from_sources({}, {}, file=settings).validate()
    assert config.insecure is False
    assert config.tls_cert == EXAMPLE.parent / "tls" / "server.pem"  # relative to the file
    assert config.log_key == EXAMPLE.parent / "log.key"
    assert config.admin_listen == "127.0.0.1:9464"
    assert (config.log_format, config.log_level, config.startup_check) == ("json", "INFO", "full")
    assert config.db.startswith("postgresql://")
    assert config.origin == "utility.example/settlement"


def test_an_unknown_key_is_named_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, 'db = "sqlite:///x.db"\n\n# a comment\nworkrs = 4\n')
    with pytest.raises(ConfigError, match=r"zkgrid\.toml, line 4: unknown key 'workrs'"):
        load_config_file(path)
    path = _write(tmp_path, 'listen = "127.0.0.1:1"\n[tls]\ncert = "x"\n')
    with pytest.raises(ConfigError, match=r"line 2: unknown key 'tls'"):
        load_config_file(path)
    path = _write(tmp_path, 'origin = "a"\n"quoted key" = 1\n')
    with pytest.raises(ConfigError, match=r"line 2: unknown key 'quoted key'"):
        load_config_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('workers = "many"\n', r"line 1: workers must be an integer"),
        ("insecure = 1\n", r"line 1: insecure must be a boolean"),
        ("workers = true\n", r"line 1: workers must be an integer"),
        ('grace = 2\nlisten = 50051\n', r"line 2: listen must be a string"),
        ("tls_cert = [1]\n", r"tls_cert must be a string"),
    ],
)
def test_a_value_of_the_wrong_type_is_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config_file(_write(tmp_path, text))


def test_unreadable_or_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config_file(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 2"):
        load_config_file(_write(tmp_path, 'db = "x"\nlisten = \n'))
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'origin = "\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config_file(path)


def test_values_in_the_file_are_checked_like_flags(tmp_path: Path) -> None:
    settings = load_config_file(_write(tmp_path, 'startup_check = "sometimes"\n'))
    with pytest.raises(ConfigError, match="startup_check in cfg: 'sometimes' is not one of"):
        ServiceConfig.from_sources({}, {}, file=settings, file_name="cfg")
    settings = load_config_file(_write(tmp_path, 'log_format = "xml"\n'))
    with pytest.raises(ConfigError, match="log_format"):
        ServiceConfig.from_sources({}, {}, file=settings)


def test_precedence_flag_over_environment_over_file_over_default(tmp_path: Path) -> None:
    settings = load_config_file(
        _write(
            tmp_path,
            'listen = "127.0.0.1:1111"\norigin = "file.example/log"\nworkers = 7\n'
            'grace = 4\ninsecure = true\nlog_level = "warning"\nadmin_listen = "127.0.0.1:9"\n',
        )
    )
    env = {"ZKGRID_ORIGIN": "env.example/log", "ZKGRID_WORKERS": "9", "ZKGRID_LISTEN": "[::1]:2"}
    flags: dict[str, object] = {"listen": "127.0.0.1:3333", "workers": None, "insecure": False}
    config = ServiceConfig.from_sources(flags, env, file=settings).validate()
    assert config.listen == "127.0.0.1:3333"  # flag over environment and file
    assert config.origin == "env.example/log"  # environment over file
    assert config.workers == 9  # environment over file (flag not given)
    assert config.grace == 4.0  # file over default
    assert config.insecure is True  # an unset store_true flag does not hide the file's true
    assert config.log_level == "WARNING"
    assert config.admin_listen == "127.0.0.1:9"
    assert config.db == ServiceConfig().db  # default
    # An empty variable is a value too: it turns the admin port off.
    off = ServiceConfig.from_sources({}, {"ZKGRID_ADMIN_LISTEN": ""}, file=settings)
    assert off.admin_listen is None


def test_bad_admin_or_log_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="--admin-listen"):
        ServiceConfig(insecure=True, admin_listen="nowhere").validate()
    with pytest.raises(ConfigError, match="must differ"):
        ServiceConfig(
            insecure=True, listen="127.0.0.1:7000", admin_listen="127.0.0.1:7000"
        ).validate()
    ServiceConfig(insecure=True, listen="127.0.0.1:0", admin_listen="127.0.0.1:0").validate()
    with pytest.raises(ConfigError, match="ZKGRID_LOG_FORMAT: 'yaml'"):
        ServiceConfig.from_sources({}, {"ZKGRID_LOG_FORMAT": "yaml"})
    with pytest.raises(ConfigError, match="--workers: 'x' is not an integer"):
        ServiceConfig.from_sources({"workers": "x"}, {})


def test_zkgrid_serve_refuses_a_bad_file_before_opening_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (*ENV.values(), CONFIG_ENV):
        monkeypatch.delenv(name, raising=False)
    db = tmp_path / "ledger.db"
    path = _write(tmp_path, f'db = "sqlite:///{db}"\ninsecure = true\nlisten = "127.0.0.1:0"\n'
                            "verify_procesess = 2\n")  # fmt: skip
    assert serve_cli.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "line 4: unknown key 'verify_procesess'" in err
    assert not db.exists()
    # The variable names the file as well; the flag wins over it.
    monkeypatch.setenv(CONFIG_ENV, str(path))
    assert serve_cli.main([]) == 2
    assert "verify_procesess" in capsys.readouterr().err
    good = _write(tmp_path, 'origin = "bad origin"\n', "good.toml")
    assert serve_cli.main(["--config", str(good), "--insecure"]) == 2
    assert "--origin must be one word" in capsys.readouterr().err
