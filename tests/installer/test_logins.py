"""One rule for every login: password file, environment or credentials.toml; refusals say which login and why."""

from __future__ import annotations

from pathlib import Path

from hallkit.cli import main
from hallkit.testing import free_port
from tests.broker.test_mosquitto_config import secured  # noqa: F401 - the fixture: a broker from `hall broker config`


def password_file(path: Path, password: str, mode: int = 0o600) -> Path:
    """A password file as an installer leaves it: the password, its own user's alone (``mode``)."""
    path.write_text(password)
    path.chmod(mode)
    return path


def status(broker, *extra: str) -> list[str]:  # noqa: ANN001
    return ["status", "--broker", f"mqtt://console@127.0.0.1:{broker.port}", "--hall", "test-hall",
            "--timeout", "1", *extra]


def test_password_file_environment_and_logins_file_all_log_in(secured, tmp_path, capsys, monkeypatch):  # noqa: F811
    broker, credentials = secured
    secret = password_file(tmp_path / "console.secret", credentials["console"] + "\n")
    # No hub runs: status exits 1 saying so, but the login itself went through.
    assert main(status(broker, "--password-file", str(secret))) == 1
    err = capsys.readouterr().err
    assert "refused" not in err and "拒绝" not in err
    monkeypatch.setenv("HALLKIT_BROKER_PASSWORD_FILE", str(secret))
    assert main(status(broker)) == 1
    assert "refused" not in capsys.readouterr().err
    monkeypatch.delenv("HALLKIT_BROKER_PASSWORD_FILE")
    logins = secured[0].conf.parent / "credentials.toml"
    assert main(status(broker, "--logins", str(logins))) == 1
    assert "refused" not in capsys.readouterr().err


def test_a_password_in_the_url_works_and_warns(secured, capsys):  # noqa: F811
    broker, credentials = secured
    url = f"mqtt://console:{credentials['console']}@127.0.0.1:{broker.port}"
    assert main(["status", "--broker", url, "--hall", "test-hall", "--timeout", "1"]) == 1
    err = capsys.readouterr().err
    assert "ps" in err and "--password-file" in err and "refused" not in err


def test_each_login_failure_says_which_login_and_why(secured, tmp_path, capsys):  # noqa: F811
    broker, _ = secured
    wrong = password_file(tmp_path / "wrong", "nope\n")
    assert main(status(broker, "--password-file", str(wrong))) != 0
    err = capsys.readouterr().err
    assert err.count("refused login console: not authorised") == 1, err  # Mosquitto's answer to a wrong password

    assert main(status(broker)) == 2
    assert "Login console has no password" in capsys.readouterr().err

    assert main(status(broker, "--password-file", str(tmp_path / "missing"))) == 1
    err = capsys.readouterr().err
    assert "console" in err and str(tmp_path / "missing") in err

    empty = password_file(tmp_path / "empty", "")
    assert main(status(broker, "--password-file", str(empty))) == 1
    assert "is empty" in capsys.readouterr().err

    closed = free_port()
    assert main(["status", "--broker", f"mqtt://console@127.0.0.1:{closed}", "--hall", "test-hall",
                 "--password-file", str(wrong)]) != 0
    assert f"Cannot reach the broker mqtt://127.0.0.1:{closed} (login console)" in capsys.readouterr().err


def test_a_terminal_speaks_as_its_login(secured, tmp_path, capsys):  # noqa: F811
    broker, credentials = secured
    secret = password_file(tmp_path / "console.secret", credentials["console"])
    assert main(["call", "--window", "1", "--device", "pad-1", "--broker", f"mqtt://console@127.0.0.1:{broker.port}",
                 "--hall", "test-hall", "--password-file", str(secret)]) == 2
    assert "--device pad-1 but the login is console" in capsys.readouterr().err


def test_a_password_file_others_may_read_is_refused_before_any_login(secured, tmp_path, capsys):  # noqa: F811
    broker, credentials = secured
    secret = password_file(tmp_path / "console.secret", credentials["console"] + "\n", mode=0o644)
    assert main(status(broker, "--password-file", str(secret))) == 1
    err = capsys.readouterr().err
    assert err.count(f"Login console: the password file {secret} may be read by other users (mode 0644)") == 1, err
    assert f"chmod 600 {secret}" in err and f"登录名 console：密码文件 {secret} 可被其他用户读取" in err
    assert credentials["console"] not in err
    logins = broker.conf.parent / "credentials.toml"
    logins.chmod(0o644)
    assert main(status(broker, "--logins", str(logins))) == 1
    assert f"the password file {logins} may be read by other users (mode 0644)" in capsys.readouterr().err
    logins.chmod(0o600)
