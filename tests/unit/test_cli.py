"""The CLI's safety rules that need no server: which URLs it talks to, how it keeps tokens."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ordo_cli import credentials
from ordo_cli import main as cli_main
from ordo_cli.api import CliError, check_url, is_loopback

TOKENS = {"access_token": "a1", "refresh_token": "r1"}


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.1.2.3", "127.255.255.254", "::1", "[::1]", "localhost", "LocalHost"],
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "10.0.0.1", "128.0.0.1", "::", "localhost.example.com", "example.com", "127"],
)
def test_hosts_that_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:3000",
        "http://localhost:3000/",
        "http://[::1]:3000",
        "https://api.example.com",
        "https://10.0.0.1:8443",
    ],
)
def test_https_anywhere_and_http_to_loopback_are_allowed(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize(
    "url", ["http://api.example.com", "http://10.0.0.1:3000", "http://0.0.0.0:3000"]
)
def test_plain_http_elsewhere_is_refused_unless_insecure(url: str) -> None:
    with pytest.raises(CliError) as refused:
        check_url(url)
    assert refused.value.code == 2
    assert "refusing plain http://" in refused.value.message
    assert "--insecure" in refused.value.message
    check_url(url, insecure=True)


@pytest.mark.parametrize("url", ["ftp://example.com", "example.com", "http://", "file:///etc"])
def test_a_url_that_is_not_http_is_refused_even_when_insecure(url: str) -> None:
    with pytest.raises(CliError) as refused:
        check_url(url, insecure=True)
    assert refused.value.code == 2


# --- the credentials file -------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return tmp_path / "ordo"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_file_is_0600_in_a_0700_directory_and_nothing_is_left_beside_it(
    config: Path,
) -> None:
    credentials.save("http://127.0.0.1:3000", TOKENS)
    assert (mode(config), mode(config / "credentials.json")) == (0o700, 0o600)
    assert [p.name for p in config.iterdir()] == ["credentials.json"]
    assert credentials.load("http://127.0.0.1:3000") == TOKENS


def test_a_directory_that_is_too_open_is_corrected(config: Path) -> None:
    config.mkdir(mode=0o755)
    os.chmod(config, 0o777)
    stale = config / "credentials.json"
    stale.write_text("{}")
    os.chmod(stale, 0o644)
    credentials.save("u", TOKENS)
    assert (mode(config), mode(stale)) == (0o700, 0o600)


def test_a_symlink_planted_where_the_old_temporary_file_went_is_never_written_through(
    config: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    config.mkdir(mode=0o700)
    for name in ("credentials.tmp", "credentials.json.tmp", ".credentials.json.tmp"):
        (config / name).symlink_to(victim)
    credentials.save("u", TOKENS)
    assert victim.read_text() == "keep me"
    assert json.loads((config / "credentials.json").read_text()) == {"u": TOKENS}


def test_the_temporary_file_is_created_exclusively_without_following_links(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[tuple[str, int, int]] = []
    real_open = os.open

    def spy(path: str, flags: int, mode: int = 0o777) -> int:
        opened.append((str(path), flags, mode))
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", spy)
    credentials.save("u", TOKENS)
    ((name, flags, file_mode),) = opened
    wanted = os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY
    assert flags & wanted == wanted
    assert file_mode == 0o600
    assert Path(name).parent == config
    assert Path(name).name != "credentials.json"


def test_forgetting_keeps_other_apis_tokens(config: Path) -> None:
    credentials.save("a", TOKENS)
    credentials.save("b", TOKENS)
    credentials.save("a", None)
    assert (credentials.load("a"), credentials.load("b")) == (None, TOKENS)
    credentials.save("never-signed-in", None)  # nothing to forget: nothing written
    assert credentials.load("b") == TOKENS


@pytest.mark.parametrize(
    "argv",
    [
        ["local", "invoke", "WorkerFunction", "-e", "event.json"],
        [
            "--api-url",
            "http://127.0.0.1:9",
            "local",
            "invoke",
            "WorkerFunction",
            "-e",
            "event.json",
        ],
        [
            "--json",
            "--api-url=http://x",
            "--insecure",
            "local",
            "invoke",
            "WorkerFunction",
            "-e",
            "event.json",
        ],
    ],
)
def test_local_invoke_is_found_after_the_global_options(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    invoked: list[list[str]] = []

    def local_invoke(arguments: list[str]) -> int:
        invoked.append(arguments)
        return 0

    monkeypatch.setattr(cli_main, "local_invoke", local_invoke)
    assert cli_main.main(argv) == 0
    assert invoked == [["WorkerFunction", "-e", "event.json"]]


@pytest.mark.parametrize(
    "argv",
    [
        ["local", "--port", "8080"],
        ["--api-url", "local", "invoke"],  # "local" is the URL here: then a command "invoke"
        ["status", "local", "invoke"],
    ],
)
def test_other_commands_are_not_local_invoke(argv: list[str]) -> None:
    assert cli_main.local_invoke_arguments(argv) is None


def test_the_skipped_global_options_are_the_parsers() -> None:
    args = cli_main.parser().parse_args(
        [*cli_main.GLOBAL_FLAGS, *(f"{o}=x" for o in cli_main.GLOBAL_VALUED), "whoami"]
    )
    assert args.command == "whoami"
