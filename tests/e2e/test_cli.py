"""The installed ``ordo`` executable, run as a subprocess against the stack under test (the
local cloud, or ``ORDO_API_URL``), or against a stand-in API on loopback."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

from bench.common import free_port
from tests.e2e.conftest import ADMIN_MISSING, PASSWORD, Api, busy_lane
from tests.waiting import eventually

ORDO = Path(sys.executable).with_name("ordo")


class Cli:
    def __init__(self, api: Api, home: Path) -> None:
        self.env = os.environ | {"ORDO_API_URL": api.url, "XDG_CONFIG_HOME": str(home)}
        self.home = home

    def __call__(
        self, *args: str, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ORDO), *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(ORDO), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def cli(api: Api, tmp_path: Path) -> Cli:
    """Signed in as a new user, with its credentials in a config directory of its own."""
    assert ORDO.exists(), "the ordo console script is not installed (pip install -e .)"
    runner = Cli(api, tmp_path)
    username, _ = api.sign_up()
    signed_in = runner("login", "--username", username, "--password-stdin", stdin=PASSWORD + "\n")
    assert signed_in.returncode == 0, signed_in.stderr
    assert f"signed in as {username}" in signed_in.stdout
    return runner


def test_the_credentials_file_is_private(cli: Cli) -> None:
    credentials = cli.home / "ordo" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(credentials.parent.stat().st_mode) == 0o700
    assert cli("whoami").returncode == 0
    assert cli("logout").stdout.strip() == "signed out"
    assert cli("whoami").returncode == 1


def test_submit_status_and_result(api: Api, cli: Cli) -> None:
    submitted = cli("submit", "2", "abcdef")
    assert submitted.returncode == 0, submitted.stderr
    task_id = submitted.stdout.strip()
    assert len(task_id) == 32
    assert eventually(
        lambda: cli("status", task_id).stdout.strip() == "completed",
        timeout=api.lane_timeout,
        interval=0.1,
    ), cli("status", task_id).stdout
    assert cli("result", task_id).stdout.strip() == "badcfe"


def test_json_output_is_one_document(cli: Cli) -> None:
    submitted = json.loads(cli("submit", "reverse", "abc", "--json").stdout)
    assert set(submitted) == {"task_id", "type", "status", "created_at"}
    ran = cli("--json", "run", "1", "hello")
    assert ran.returncode == 0
    assert json.loads(ran.stdout) == {
        "task_id": json.loads(ran.stdout)["task_id"],
        "type": "reverse",
        "status": "completed",
        "result": "olleh",
    }
    status = json.loads(cli("status", submitted["task_id"], "--json").stdout)
    assert status["task_id"] == submitted["task_id"]


def test_run_waits_and_prints_the_result(cli: Cli) -> None:
    ran = cli("run", "repeat_by_position", "abc")
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.strip().splitlines()
    assert lines[0].startswith("task ")
    assert lines[-1] == "abbccc"
    assert "\r" not in ran.stdout  # piped: plain lines, no live display


def test_errors_are_one_line_with_the_right_exit_code(cli: Cli) -> None:
    unknown = cli("status", "0" * 32)
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "ordo: Task not found")
    too_long = cli("submit", "repeat_by_position", "x" * 301)
    assert too_long.returncode == 1
    assert "at most 300" in too_long.stderr
    bad_type = cli("submit", "shout", "x")
    assert bad_type.returncode == 2
    assert "not a task type" in bad_type.stderr
    for result in (unknown, too_long, bad_type):
        assert "Traceback" not in result.stderr


def test_a_server_that_is_down(cli: Cli) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    down = cli("status", "0" * 32, "--api-url", url)
    assert down.returncode == 2
    assert down.stderr.strip() == (
        f"ordo: cannot reach the ordo API at {url}; is it running? "
        "Start one with `ordo local`, or pass --api-url"
    )


def test_run_gives_up_after_its_timeout(api: Api, cli: Cli) -> None:
    busy_lane(api)
    ran = cli("run", "reverse", "abc", "--timeout", "0.3")
    assert ran.returncode == 124
    assert "gave up waiting after 0.3s" in ran.stderr


def test_ctrl_c_stops_the_wait_and_the_task_carries_on(api: Api, cli: Cli) -> None:
    busy_lane(api)
    process = cli.start("run", "swap_pairs", "abcd")
    assert process.stdout is not None
    first = process.stdout.readline()  # "task <id>": the wait has begun
    task_id = first.split()[1]
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 130
    assert f"stopped waiting; task {task_id} carries on" in err
    assert f"ordo status {task_id}" in err
    assert "Traceback" not in err + out
    assert eventually(
        lambda: cli("status", task_id).stdout.strip() == "completed",
        timeout=api.lane_timeout,
        interval=0.2,
    ), cli("status", task_id).stdout
    assert cli("result", task_id).stdout.strip() == "badc"


def job_once_ended(api: Api, cli: Cli, job_id: str) -> dict[str, Any]:
    """``ordo job ID --json`` once the job has completed or failed."""

    def ended() -> dict[str, Any] | None:
        shown = cli("job", job_id, "--json")
        view: dict[str, Any] | None = json.loads(shown.stdout) if shown.stdout else None
        return view if view and view["status"] in ("completed", "failed") else None

    view = eventually(ended, timeout=api.lane_timeout, interval=0.1)
    assert view is not None, f"job {job_id} did not finish"
    return view


def test_a_failed_job_and_documents(api: Api, cli: Cli, tmp_path: Path) -> None:
    document = tmp_path / "invoice.json"
    document.write_text(json.dumps({"content": {"amount": "lots"}}))
    uploaded = cli("upload", str(document), "--type", "invoice")
    assert uploaded.returncode == 0, uploaded.stderr
    job_id = uploaded.stdout.strip()
    ended = job_once_ended(api, cli, job_id)
    assert (ended["status"], ended["error"]) == ("failed", "amount must be a number, not 'lots'")
    piped = cli("upload", "-", "--type", "contract", stdin=json.dumps({"parties": ["A"]}))
    assert piped.returncode == 0


def test_cases_fetch_and_data(cli: Cli) -> None:
    case_id = cli("cases", "create", "--procedure", "Knee MRI", "--cpt", "73721").stdout.strip()
    watched = cli("cases", "watch", case_id)
    assert watched.returncode == 0
    assert "complete" in watched.stdout.splitlines()
    listed = json.loads(cli("cases", "list", "--json").stdout)
    assert [item["case_id"] for item in listed["items"]] == [case_id]
    queued = cli("fetch")
    assert queued.returncode == 0
    # Each state the stack's fetching may be in (test_fetch.py arranges each), with its message:
    # queued now, already active (queued by another test), or cached after a recent fetch.
    assert re.fullmatch(
        r"fetch job [0-9a-f]{32} (pending: Fetch job queued in background"
        r"|(?P<active>pending|processing): A fetch job is already (?P=active); follow that one"
        r"|completed: Data fetched recently; using the stored data)\n",
        queued.stdout,
    ), queued.stdout
    assert cli("fetch", "--sync").returncode == 1  # admins only
    assert cli("data", "--user-id", "1", "--json").returncode == 0


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_the_live_status_line_updates_in_a_real_terminal(api: Api, cli: Cli) -> None:
    busy_lane(api)
    session = f"ordo-{os.getpid()}"
    env_prefix = " ".join(
        f"{k}={v}" for k, v in cli.env.items() if k in ("ORDO_API_URL", "XDG_CONFIG_HOME")
    )
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "120",
            "-y",
            "10",
            f"env {env_prefix} {ORDO} run reverse live; sleep 30",
        ],
        check=True,
    )
    try:
        screens: list[str] = []

        def finished_on_screen() -> str | None:
            pane = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            line = next(
                (row for row in pane.splitlines() if "ahead" in row or "processing" in row), ""
            )
            if line and (not screens or line != screens[-1]):
                screens.append(line)
            return pane if "evil" in pane else None

        pane = eventually(finished_on_screen, timeout=api.lane_timeout, interval=0.1)
        assert len(screens) >= 2, screens  # the status line changed in place
        assert all("·" in line and line.rstrip().endswith("s") for line in screens)
        assert pane is not None, screens
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def test_a_failed_task_and_a_failing_server(
    api: Api, tmp_path: Path, httpserver: HTTPServer
) -> None:
    """A stand-in API on loopback, for answers the real one gives rarely: a failed task, a 500."""
    cli = Cli(api, tmp_path)
    task = {
        "task_id": "f" * 32,
        "type": "reverse",
        "status": "pending",
        "created_at": "2026-11-21T12:00:00Z",
    }
    httpserver.expect_request("/tasks", method="POST").respond_with_json(task, status=202)
    failed = task | {
        "status": "failed",
        "queue_position": None,
        "error": "boom",
        "started_at": None,
        "finished_at": None,
    }
    httpserver.expect_request(f"/tasks/{'f' * 32}").respond_with_json(failed)
    ran = cli("run", "1", "abc", "--api-url", httpserver.url_for("/"))
    assert (ran.returncode, ran.stderr.strip()) == (1, f"task {'f' * 32} failed: boom")

    httpserver.clear()
    httpserver.expect_request(f"/tasks/{'e' * 32}").respond_with_json(
        {"message": "Internal Server Error"}, status=500
    )
    broken = cli("status", "e" * 32, "--api-url", httpserver.url_for("/"))
    assert (broken.returncode, broken.stderr.strip()) == (
        1,
        "ordo: the server failed (500): Internal Server Error",
    )


def test_products_list_search_and_get(cli: Cli, admin: httpx.Client) -> None:
    tag = secrets.token_hex(4)
    created = []
    for n, price in enumerate(("2.50", "10.00", "19.99")):
        response = admin.post(
            "/products",
            json={
                "name": f"Gadget {tag} {n}",
                "price": price,
                "stock": n,
                "sku": f"{tag}-{n}",
                "category": f"cat-{tag}",
            },
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    listed = json.loads(
        cli(
            "products",
            "list",
            "--category",
            f"cat-{tag}",
            "--sort-by",
            "price",
            "--sort-order",
            "asc",
            "--json",
        ).stdout
    )
    assert [item["price"] for item in listed["items"]] == [2.5, 10.0, 19.99]
    assert listed["total"] == 3
    found = cli("products", "search", f"gadget {tag} 2")
    assert found.returncode == 0
    assert f"Gadget {tag} 2" in found.stdout
    assert "page 1 of 1 (1 products)" in found.stdout
    shown = json.loads(cli("products", "get", created[0]["id"], "--json").stdout)
    assert (shown["sku"], shown["price"]) == (f"{tag}-0", 2.5)
    missing = cli("products", "get", "0" * 32)
    assert (missing.returncode, missing.stderr.strip()) == (1, "ordo: Product not found")


# --- admin: lane operations ------------------------------------------------------------------


@pytest.fixture
def admin_cli(api: Api, tmp_path: Path) -> Cli:
    """Signed in as the admin, with credentials of its own."""
    if api.admin is None:
        pytest.skip(ADMIN_MISSING)
    username, password = api.admin
    runner = Cli(api, tmp_path / "admin")
    signed_in = runner("login", "--username", username, "--password-stdin", stdin=password + "\n")
    assert signed_in.returncode == 0, signed_in.stderr
    return runner


def failed_upload(api: Api, cli: Cli) -> str:
    """An invoice job that fails for real; returns its id once it has."""
    uploaded = cli("upload", "-", "--type", "invoice", stdin=json.dumps({"amount": "abc"}))
    assert uploaded.returncode == 0, uploaded.stderr
    job_id = uploaded.stdout.strip()
    assert job_once_ended(api, cli, job_id)["status"] == "failed"
    return job_id


def test_admin_lane_jobs_and_retry(api: Api, cli: Cli, admin_cli: Cli) -> None:
    job_id = failed_upload(api, cli)

    lane = admin_cli("admin", "lane")
    assert lane.returncode == 0, lane.stderr
    assert lane.stdout.startswith("pending ")
    assert "failed in the last hour" in lane.stdout
    assert set(json.loads(admin_cli("--json", "admin", "lane").stdout)) == {
        "pending",
        "processing",
        "oldest_pending_age_seconds",
        "running",
        "dead_letters",
        "failed_last_hour",
    }

    failed_upload(api, cli)  # so there are two pages of one
    listed = admin_cli("admin", "jobs", "--status", "failed", "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    first, more = listed.stdout.strip().splitlines()
    assert first.split()[1:3] == ["failed", "invoice"]
    assert more.startswith("more: ordo admin jobs --status failed --cursor ")
    cursor = more.rsplit(" ", 1)[1]
    page = json.loads(
        admin_cli("admin", "jobs", "--status", "failed", "--cursor", cursor, "--json").stdout
    )
    assert first.split()[0] not in [item["job_id"] for item in page["items"]]
    everything = admin_cli("admin", "jobs", "--status", "failed", "--limit", "100", "--json")
    assert job_id in [item["job_id"] for item in json.loads(everything.stdout)["items"]]

    retried = admin_cli("admin", "retry", job_id)
    assert retried.returncode == 0, retried.stderr
    new_id = retried.stdout.strip()
    assert len(new_id) == 32
    assert new_id != job_id
    again = admin_cli("admin", "retry", job_id, "--json")
    assert (again.returncode, again.stderr.strip()) == (
        1,
        f"ordo: Job {job_id} was already retried as {new_id}",
    )
    assert again.stdout == ""


def test_admin_commands_refuse_users_and_bad_input(cli: Cli, admin_cli: Cli) -> None:
    refused = cli("admin", "lane")
    assert (refused.returncode, refused.stderr.strip()) == (1, "ordo: Admin role required")
    unknown = admin_cli("admin", "retry", "0" * 32)
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "ordo: Job not found")
    no_status = admin_cli("admin", "jobs")
    assert no_status.returncode == 2
    assert "--status" in no_status.stderr
    too_many = admin_cli("admin", "jobs", "--status", "failed", "--limit", "101")
    assert too_many.returncode == 1
    assert "less than or equal to 100" in too_many.stderr
    for result in (refused, unknown, no_status, too_many):
        assert "Traceback" not in result.stderr
    for action in ("lane", "jobs", "retry"):
        helped = admin_cli("admin", action, "--help")
        assert "example: ordo admin " + action in helped.stdout


# --- plain http, stored tokens and logout ----------------------------------------------------


def stand_in(api: Api, home: Path, httpserver: HTTPServer) -> tuple[Cli, str]:
    """A CLI pointed at a stand-in API on loopback, already holding tokens a1/r1 for it."""
    url = httpserver.url_for("/").rstrip("/")
    folder = home / "ordo"
    folder.mkdir(mode=0o700, parents=True)
    tokens = {"access_token": "a1", "refresh_token": "r1"}
    (folder / "credentials.json").write_text(json.dumps({url: tokens}))
    runner = Cli(api, home)
    runner.env["ORDO_API_URL"] = url
    return runner, url


def stored(cli: Cli, url: str) -> object:
    data = json.loads((cli.home / "ordo" / "credentials.json").read_text())
    return data.get(url)


def test_plain_http_to_a_host_that_is_not_loopback_is_refused(
    api: Api, tmp_path: Path, httpserver: HTTPServer
) -> None:
    # Given a URL naming 0.0.0.0: not loopback by its name, though Linux connects it here
    httpserver.expect_request("/data").respond_with_json({"items": [], "next_cursor": None})
    url = f"http://0.0.0.0:{httpserver.port}"
    cli = Cli(api, tmp_path)
    for args, stdin in (
        (("data",), None),
        (("login", "--username", "ann", "--password-stdin"), "pw\n"),
    ):
        refused = cli(*args, "--api-url", url, stdin=stdin)
        # Then nothing is sent, and the reason is one line with exit code 2
        assert refused.returncode == 2, refused
        assert refused.stderr.startswith(
            "ordo: refusing plain http:// to 0.0.0.0: your password and tokens would cross "
            "the network unencrypted. Use https://, or pass --insecure"
        )
        assert "Traceback" not in refused.stderr
    assert httpserver.log == []
    # Unless --insecure says the risk is accepted
    allowed = cli("data", "--api-url", url, "--insecure")
    assert (allowed.returncode, allowed.stdout.strip()) == (0, "no data")
    assert len(httpserver.log) == 1
    # And loopback by name is plain http's only default
    assert cli("data", "--api-url", httpserver.url_for("/")).returncode == 0


def test_stored_tokens_survive_a_5xx_and_a_429_and_go_only_on_a_401(
    api: Api, tmp_path: Path, httpserver: HTTPServer
) -> None:
    cli, url = stand_in(api, tmp_path, httpserver)
    task = f"/tasks/{'e' * 32}"
    for status, body, message in (
        (
            503,
            {"message": "Service Unavailable"},
            "ordo: the server failed (503): Service Unavailable",
        ),
        (
            429,
            {"detail": "Too many requests; retry in 30 s"},
            "ordo: Too many requests; retry in 30 s",
        ),
        (500, {"detail": "boom"}, "ordo: the server failed (500): boom"),
    ):
        httpserver.clear()
        httpserver.expect_request(task).respond_with_json({"detail": "Invalid token"}, status=401)
        httpserver.expect_request("/auth/refresh", method="POST").respond_with_json(
            body, status=status
        )
        failed = cli("status", "e" * 32)
        assert (failed.returncode, failed.stderr.strip()) == (1, message)
        assert stored(cli, url) == {"access_token": "a1", "refresh_token": "r1"}, status
    httpserver.clear()
    httpserver.expect_request(task).respond_with_json({"detail": "Invalid token"}, status=401)
    httpserver.expect_request("/auth/refresh", method="POST").respond_with_json(
        {"detail": "Invalid token"}, status=401
    )
    expired = cli("status", "e" * 32)
    assert (expired.returncode, expired.stderr.strip()) == (
        1,
        "ordo: your session has expired; run `ordo login` again",
    )
    assert stored(cli, url) is None


def test_logout_tells_the_server_then_forgets_the_tokens(
    api: Api, tmp_path: Path, httpserver: HTTPServer
) -> None:
    cli, url = stand_in(api, tmp_path, httpserver)
    httpserver.expect_request("/auth/logout", method="POST").respond_with_data("", status=204)
    out = cli("logout", "--json")
    assert (out.returncode, out.stderr) == (0, "")
    assert json.loads(out.stdout) == {"signed_out": True, "server_told": True}
    assert stored(cli, url) is None
    ((request, _),) = httpserver.log
    assert request.headers["authorization"] == "Bearer a1"
    assert request.get_json() == {"refresh_token": "r1"}
    assert cli("logout").stdout.strip() == "not signed in"
    assert len(httpserver.log) == 1  # no tokens: nothing to tell the server


@pytest.mark.parametrize(
    ("status", "told"),
    [(204, True), (401, True), (404, True), (500, False), (503, False), (429, False)],
)
def test_logout_forgets_the_tokens_whatever_the_server_answers(
    api: Api, tmp_path: Path, httpserver: HTTPServer, status: int, told: bool
) -> None:
    cli, url = stand_in(api, tmp_path, httpserver)
    httpserver.expect_request("/auth/logout", method="POST").respond_with_json(
        {"detail": "nope"}, status=status
    )
    out = cli("logout")
    assert (out.returncode, out.stdout.strip()) == (0, "signed out")
    assert stored(cli, url) is None
    if told:
        assert out.stderr == ""
    else:
        assert "ordo: the server could not be told (" in out.stderr
        assert "until its refresh token expires" in out.stderr


def test_logout_with_the_server_down_still_forgets_the_tokens(api: Api, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    folder = tmp_path / "ordo"
    folder.mkdir(mode=0o700)
    (folder / "credentials.json").write_text(
        json.dumps({url: {"access_token": "a1", "refresh_token": "r1"}})
    )
    cli = Cli(api, tmp_path)
    out = cli("logout", "--api-url", url)
    assert (out.returncode, out.stdout.strip()) == (0, "signed out")
    assert out.stderr.startswith("ordo: the server could not be told (cannot reach the ordo API")
    assert stored(cli, url) is None


def test_logout_revokes_the_session_on_the_real_server(api: Api, cli: Cli) -> None:
    tokens = json.loads((cli.home / "ordo" / "credentials.json").read_text())[api.url]
    out = cli("logout")
    assert (out.returncode, out.stdout.strip(), out.stderr) == (0, "signed out", "")
    with api.client() as anonymous:
        again = anonymous.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 401, again.text
