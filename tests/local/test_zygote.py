"""The fork server (infra.local.zygote): function processes forked from one interpreter image,
each as isolated as a spawned one, replaced when their code changes; memory measured as PSS."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bench.localcloud import memory_kib
from infra.local import zygote_warmup
from infra.local.functions import CodeWatcher, FunctionHost
from infra.local.invoke import Outcome
from infra.local.stack import ROOT, Function
from infra.local.zygote import EVERYTHING, LAYER_PRELOAD, ForkServers
from tests.local.conftest import fixture_function
from tests.waiting import eventually

FIXTURE_FUNCTIONS = Path(__file__).parent / "fixture" / "functions"
BASE = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1"}  # as every function gets it


def _function(name: str, folder: Path | None = None, **changes: Any) -> Function:
    return fixture_function(name, folder or FIXTURE_FUNCTIONS / "inspect", **changes)


@pytest.fixture
def servers() -> Iterator[ForkServers]:
    # The fork server's own environment carries a variable no function has.
    launcher = ForkServers(BASE | {"ZYGOTE_ONLY": "server"})
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture
def hosts() -> Iterator[list[FunctionHost]]:
    started: list[FunctionHost] = []
    try:
        yield started
    finally:
        for host in started:
            host.close()


def _host(
    hosts: list[FunctionHost], launcher: ForkServers, function: Function, **env: str
) -> FunctionHost:
    host = FunctionHost(function, BASE | env, launcher=launcher)
    hosts.append(host)
    return host


def _call(host: FunctionHost, event: dict[str, Any] | None = None) -> dict[str, Any]:
    result = host.invoke(event or {})
    assert result.outcome is Outcome.OK, result
    payload: dict[str, Any] = result.payload
    return payload


def test_each_child_has_exactly_its_functions_environment(
    servers: ForkServers, hosts: list[FunctionHost]
) -> None:
    a = _host(hosts, servers, _function("A"), SECRET="a-only")
    b = _host(hosts, servers, _function("B"), OTHER="b-only")
    seen_a, seen_b = _call(a), _call(b)
    pythonpath = {"PYTHONPATH": str(ROOT)}
    assert seen_a["environment"] == BASE | {"SECRET": "a-only"} | pythonpath
    assert seen_b["environment"] == BASE | {"OTHER": "b-only"} | pythonpath
    # Both were forked by the fork server (no plain processes), which started once.
    assert seen_a["parent"] == seen_b["parent"] == servers.pids()[0]


def test_a_child_starts_as_a_spawned_process_would(
    servers: ForkServers, hosts: list[FunctionHost]
) -> None:
    seen = _call(_host(hosts, servers, _function("A")))
    folder = str(FIXTURE_FUNCTIONS / "inspect")
    assert seen["cwd"] == folder
    assert seen["path"][:3] == [folder, folder, str(ROOT)]  # code folder, then PYTHONPATH
    assert seen["session"] == seen["pid"]  # a session of its own: ctrl+c is the cloud's
    assert seen["sigchld_default"]
    assert seen["sigint_default"]


def test_two_children_draw_different_random_numbers(
    servers: ForkServers, hosts: list[FunctionHost]
) -> None:
    first = _call(_host(hosts, servers, _function("A")))
    second = _call(_host(hosts, servers, _function("A")))
    assert first["pid"] != second["pid"]
    assert first["random"] != second["random"]
    assert first["uuid"] != second["uuid"]


def test_killing_one_child_leaves_the_others_serving(
    servers: ForkServers, hosts: list[FunctionHost]
) -> None:
    a = _host(hosts, servers, _function("A"))
    b = _host(hosts, servers, _function("B"))
    victim, survivor = _call(a)["pid"], _call(b)["pid"]
    os.kill(victim, signal.SIGKILL)
    assert eventually(lambda: a.pids() == [])  # a forked child is watched through its pidfd
    again = _call(b)
    assert (again["pid"], again["invocations"]) == (survivor, 2)
    replaced = _call(a)
    assert replaced["pid"] != victim
    assert replaced["invocations"] == 1


def test_a_timeout_kills_only_that_child(servers: ForkServers, hosts: list[FunctionHost]) -> None:
    sleepy = _host(hosts, servers, _function("Sleepy", FIXTURE_FUNCTIONS / "sleepy", timeout=1))
    other = _host(hosts, servers, _function("A"))
    survivor = _call(other)["pid"]
    result = sleepy.invoke({"pathParameters": {"seconds": "30"}})
    assert result.outcome is Outcome.TIMEOUT
    assert sleepy.pids() == []
    assert _call(other)["pid"] == survivor


def test_reserved_concurrency_throttles_forked_functions_too(
    servers: ForkServers, hosts: list[FunctionHost]
) -> None:
    single = _host(
        hosts,
        servers,
        _function("Single", FIXTURE_FUNCTIONS / "single", reserved_concurrency=1),
    )
    single.warm()
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(single.invoke, {"pathParameters": {"seconds": "1"}})
        assert eventually(lambda: single.in_flight() == 1)
        assert single.invoke({"pathParameters": {"seconds": "0"}}).outcome is Outcome.THROTTLED
        assert running.result(timeout=30).outcome is Outcome.OK


def test_a_dead_fork_server_is_replaced_on_the_next_start(
    servers: ForkServers, hosts: list[FunctionHost], caplog: pytest.LogCaptureFixture
) -> None:
    a = _host(hosts, servers, _function("A"))
    first = _call(a)
    (server,) = servers.pids()
    os.kill(server, signal.SIGKILL)
    assert eventually(lambda: servers.pids() == [])
    assert _call(a)["pid"] == first["pid"]  # its children live on
    with caplog.at_level(logging.WARNING, logger="ordo.local"):
        fresh = _call(_host(hosts, servers, _function("B")))
    (new_server,) = servers.pids()
    assert new_server != server
    assert fresh["parent"] == new_server
    assert f"fork server {server} exited" in caplog.text


def test_a_function_whose_environment_the_preload_read_gets_a_plain_process(
    servers: ForkServers, hosts: list[FunctionHost]
) -> None:
    """Powertools reads POWERTOOLS_DEBUG at import: a server that imported it with another value
    cannot fork this function faithfully."""
    forked = _call(_host(hosts, servers, _function("A")))
    plain = _call(_host(hosts, servers, _function("B"), POWERTOOLS_DEBUG="1"))
    assert forked["parent"] in servers.pids()
    assert plain["parent"] == os.getpid()
    assert plain["environment"]["POWERTOOLS_DEBUG"] == "1"


def test_preload_runs_in_a_forked_childs_init(
    servers: ForkServers, hosts: list[FunctionHost]
) -> None:
    preloaded = _function("Preloaded", FIXTURE_FUNCTIONS / "preloaded")
    host = _host(hosts, servers, preloaded, ORDO_LOCAL_PRELOAD="tests.local.fixture.preload")
    assert _call(host) == {"preloaded_first": True, "imports": 1}
    broken = _host(
        hosts, servers, preloaded, ORDO_LOCAL_PRELOAD="tests.local.fixture.preload_broken"
    )
    result = broken.invoke({})
    assert result.outcome is Outcome.ERROR
    assert "injected preload failure" in str(result.error)


def test_the_start_to_ready_time_is_recorded(
    servers: ForkServers, hosts: list[FunctionHost]
) -> None:
    host = _host(hosts, servers, _function("A"))
    assert host.ready_ms is None
    host.warm()
    assert host.ready_ms is not None
    assert host.ready_ms > 0


# --- the layer, preloaded ----------------------------------------------------------------------

LAYER = ROOT / "layers" / "core"
# What a function sets for itself, and what the layer must therefore not read at import.
FUNCTION_SETTINGS = ("POWERTOOLS_LOG_LEVEL", "POWERTOOLS_SERVICE_NAME", "LOG_LEVEL")


def test_the_server_preloads_every_layer_module_but_ordo_boot() -> None:
    modules = {
        ".".join(path.relative_to(LAYER).with_suffix("").parts).removesuffix(".__init__")
        for path in (LAYER / "ordo").rglob("*.py")
    }
    assert set(LAYER_PRELOAD) == modules - {"ordo", "ordo.storage", "ordo.boot"}


def test_the_layer_reads_no_function_setting_when_the_server_imports_it(
    servers: ForkServers,
) -> None:
    hello = servers.server((LAYER,)).hello()
    assert set(LAYER_PRELOAD) <= set(hello["imported"])
    reads = set(hello["reads"])
    assert not reads & {*FUNCTION_SETTINGS, "AWS_LAMBDA_FUNCTION_NAME", EVERYTHING}
    assert not [name for name in reads if name.startswith("ORDO_")]


def test_a_child_of_a_server_that_preloaded_the_logger_builds_it_from_its_own_environment(
    servers: ForkServers, hosts: list[FunctionHost]
) -> None:
    observed = _function("Observed", FIXTURE_FUNCTIONS / "observed", layers=[LAYER])
    debug = _call(_host(hosts, servers, observed, POWERTOOLS_LOG_LEVEL="DEBUG"))
    error = _call(_host(hosts, servers, observed, POWERTOOLS_LOG_LEVEL="ERROR"))
    # Forked (a plain process would have imported nothing of the layer before its init) ...
    assert {"ordo.observability", "ordo.http", "ordo.worker"} <= set(debug["preloaded"])
    assert "ordo.boot" not in debug["preloaded"]
    # ... and each with its own level.
    assert (debug["log_level"], error["log_level"]) == (logging.DEBUG, logging.ERROR)


def test_the_warm_up_app_answers_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    assert zygote_warmup.run() == [200, 401, 201, 422]
    assert set(threading.enumerate()) == before  # the server forks only single-threaded


# --- code changes ----------------------------------------------------------------------------

APP = """import os
import lib


def handler(event, context):
    return {"pid": os.getpid(), "parent": os.getppid(), "layer": lib.NAME, "own": OWN}


OWN = "{own}"
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    # A later edit must be seen even within the file system's timestamp granularity.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_a_layer_change_replaces_the_server_and_a_function_change_only_its_children(
    tmp_path: Path, hosts: list[FunctionHost]
) -> None:
    layers, functions = tmp_path / "layers", tmp_path / "functions"
    _write(layers / "lib" / "lib.py", 'NAME = "layer-1"\n')
    for name in ("a", "b"):
        _write(functions / name / "app.py", APP.replace("{own}", f"{name}-1"))
    watcher = CodeWatcher([functions, layers])
    launcher = ForkServers(BASE, layer_generation=lambda: watcher.generation_under(layers))
    try:

        def host(name: str) -> FunctionHost:
            code = functions / name
            function = _function(name, code, layers=[layers / "lib"])
            started = FunctionHost(
                function,
                BASE,
                launcher=launcher,
                generation=lambda: (
                    watcher.generation_under(code),
                    watcher.generation_under(layers),
                ),
            )
            hosts.append(started)
            return started

        a, b = host("a"), host("b")
        a1, b1 = _call(a), _call(b)
        (server,) = launcher.pids()
        assert a1["parent"] == b1["parent"] == server
        assert (a1["layer"], a1["own"], b1["own"]) == ("layer-1", "a-1", "b-1")

        # When one function's code changes, only that function's processes are replaced.
        _write(functions / "a" / "app.py", APP.replace("{own}", "a-2"))
        assert watcher.check()
        a2, b2 = _call(a), _call(b)
        assert a2["own"] == "a-2"
        assert a2["pid"] != a1["pid"]
        assert b2["pid"] == b1["pid"]
        assert launcher.pids() == [server]

        # When the layer changes, the fork server is replaced, and every function's processes.
        _write(layers / "lib" / "lib.py", 'NAME = "layer-2"\n')
        assert watcher.check()
        a3, b3 = _call(a), _call(b)
        (new_server,) = launcher.pids()
        assert new_server != server
        assert a3["parent"] == b3["parent"] == new_server
        assert (a3["layer"], b3["layer"]) == ("layer-2", "layer-2")
        assert a3["pid"] != a2["pid"]
        assert b3["pid"] != b2["pid"]
    finally:
        launcher.close()


def test_the_watcher_counts_changes_per_folder(tmp_path: Path) -> None:
    _write(tmp_path / "functions" / "a" / "app.py", "A = 1\n")
    _write(tmp_path / "functions" / "b" / "app.py", "B = 1\n")
    watcher = CodeWatcher([tmp_path / "functions"])
    assert not watcher.check()
    _write(tmp_path / "functions" / "b" / "app.py", "B = 2\n")
    assert watcher.check()
    assert watcher.generation == 1
    assert watcher.generation_under(tmp_path / "functions" / "b") == 1
    assert watcher.generation_under(tmp_path / "functions" / "a") == 0
    (tmp_path / "functions" / "a" / "app.py").unlink()  # a removal is a change too
    assert watcher.check()
    assert watcher.generation_under(tmp_path / "functions" / "a") == 1


# --- memory: PSS --------------------------------------------------------------------------------


def test_pss_is_read_from_smaps_rollup_and_counts_shared_pages_once(
    servers: ForkServers, hosts: list[FunctionHost]
) -> None:
    own = memory_kib(os.getpid())
    assert own is not None
    rss, pss = own
    assert 0 < pss <= rss
    first = _call(_host(hosts, servers, _function("A")))["pid"]
    second = _call(_host(hosts, servers, _function("A")))["pid"]
    children = [memory_kib(pid) for pid in (first, second)]
    assert None not in children
    rss_sum = sum(m[0] for m in children if m)
    pss_sum = sum(m[1] for m in children if m)
    # Forked from one image, the two share most of their pages: RSS counts them twice.
    assert pss_sum < rss_sum
    assert memory_kib(2**22 + 12345) is None  # no such process
