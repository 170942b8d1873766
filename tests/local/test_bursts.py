"""Bursts of clients: API Gateway answers every connection, with 429 past the stage's throttle."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bench.common import free_port
from infra.local.gateway import Gateway, TokenBucket
from infra.local.invoke import Invocation, Outcome
from infra.local.routing import Route
from infra.local.stack import Stack, Throttle, Throttling
from infra.local.startup import Bootstrap, GatedInvoker, Phases, Warming
from tests.e2e.conftest import ROOT
from tests.local.conftest import FIXTURE
from tests.waiting import eventually

CLIENTS = 200
COMMAND = [sys.executable, "-m", "infra.local"]
NO_REFILL = 1e-9  # tokens a second: none come back while a test runs


class Answering:
    """A function that answers 200 at once, and the events it was invoked with."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        self.events.append((logical_id, event))
        return Invocation(Outcome.OK, payload={"statusCode": 200, "body": logical_id})


def serve(gateway: Gateway) -> Iterator[Gateway]:
    gateway.serve_in_thread()
    try:
        yield gateway
    finally:
        gateway.shutdown()
        gateway.server_close()


@pytest.fixture
def throttled() -> Iterator[Gateway]:
    routes = [Route("GET", "/items/{item_id}", "Items"), Route("POST", "/items", "Items")]
    throttling = Throttling(
        default=Throttle(rate=NO_REFILL, burst=50),
        routes={"POST /items": Throttle(rate=NO_REFILL, burst=2)},
    )
    yield from serve(Gateway(("127.0.0.1", 0), routes, Answering(), throttling=throttling))


@pytest.fixture(scope="module")
def fixture_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``python -m infra.local`` running the fixture template, in a process of its own (moto's
    state is per process); its port."""
    port = free_port()
    log = tmp_path_factory.mktemp("bursts") / "local-cloud.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*COMMAND, "--port", str(port), "--no-watch", "--template", str(FIXTURE)],
            cwd=ROOT,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def up() -> bool:
        try:
            return get(port, "GET", "/_local/health")[0] == 200
        except OSError:
            return False

    try:
        assert eventually(up, timeout=60), log.read_text()
        yield port
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)


def burst(port: int, path: str, clients: int = CLIENTS) -> Counter[int | str]:
    """``clients`` connections at once, each sending one request; their statuses, or the error
    of a connection that got no HTTP answer."""
    ready = threading.Barrier(clients)

    def one(_: int) -> int | str:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            ready.wait()
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            return response.status
        except OSError as exc:
            return type(exc).__name__
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return Counter(pool.map(one, range(clients)))


def get(port: int, method: str, path: str) -> tuple[int, str, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
        kind = response.getheader("content-type", "")
        return response.status, kind, json.loads(body) if kind == "application/json" else {}
    finally:
        connection.close()


def test_every_client_of_a_burst_gets_an_http_answer(fixture_cloud: int) -> None:
    # Given the local cloud, whose fixture API sets no throttle, and its Echo function that
    # serves 4 invocations at a time
    # When 200 clients connect at once
    statuses = burst(fixture_cloud, "/items/burst")
    # Then every connection gets an answer: the ones beyond the function's processes waited
    assert statuses == Counter({200: CLIENTS})


def test_the_start_up_report_names_the_bootstrap_and_the_warming_apart(fixture_cloud: int) -> None:
    # Given the local cloud, once its start-up has ended
    assert eventually(lambda: get(fixture_cloud, "GET", "/_local/startup")[2]["ready"], 60)
    report = get(fixture_cloud, "GET", "/_local/startup")[2]
    # Then it says that signed-in requests can go ahead, and that every function is warm
    assert report["bootstrapped"] is True
    assert report["startup_error"] is None
    assert report["warmed"] is True
    assert report["not_warmed"] == {}
    assert "warm functions" in report["phases_ms"]
    # And its health says the same to the tools that talk to moto directly
    assert get(fixture_cloud, "GET", "/_local/health")[2]["bootstrapped"] is True


def test_a_burst_past_the_throttle_gets_429_and_never_a_dropped_connection(
    throttled: Gateway,
) -> None:
    # Given a route whose throttle holds 50 tokens and refills none
    port = throttled.server_address[1]
    # When 200 clients call it at once
    statuses = burst(port, "/items/1")
    # Then 50 get through and the other 150 are told to slow down: nobody gets no answer
    assert statuses == Counter({200: 50, 429: 150})


def test_past_the_burst_the_answer_is_api_gateways_429(throttled: Gateway) -> None:
    # Given a route whose own throttle (RouteSettings) holds 2 tokens
    port = throttled.server_address[1]
    answers = [get(port, "POST", "/items") for _ in range(3)]
    # Then the third request gets API Gateway's 429, in API Gateway's words
    assert [status for status, _, _ in answers] == [200, 200, 429]
    assert answers[2][1:] == ("application/json", {"message": "Too Many Requests"})
    # And another route keeps its own bucket
    assert get(port, "GET", "/items/1")[0] == 200


def test_the_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(Throttle(rate=2, burst=3), clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 1.0  # two tokens a second
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] += 60.0  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_the_throttle_is_the_templates_stage_settings() -> None:
    # The template wires ApiThrottling* parameters to the HttpApi's DefaultRouteSettings
    stack = Stack.load(overrides={"ApiThrottlingRateLimit": "7", "ApiThrottlingBurstLimit": "3"})
    assert stack.throttling().for_route("GET /health") == Throttle(rate=7.0, burst=3)


def stage_stack(*apis: str, **default_route_settings: int) -> Stack:
    """A plain CloudFormation stack: the HttpApis ``apis`` and one stage with these settings."""
    resources: dict[str, Any] = {lid: {"Type": "AWS::ApiGatewayV2::Api"} for lid in apis}
    resources["Stage"] = {
        "Type": "AWS::ApiGatewayV2::Stage",
        "Properties": {"ApiId": {"Ref": apis[0]}, "DefaultRouteSettings": default_route_settings},
    }
    stack = Stack("ordo", "us-east-1", {"Resources": resources}, {})
    stack._name_resources()
    return stack


@pytest.mark.parametrize(
    ("settings", "throttle"),
    [
        ({"ThrottlingBurstLimit": 20}, Throttle(rate=10_000.0, burst=20)),
        ({"ThrottlingRateLimit": 7}, Throttle(rate=7.0, burst=5_000)),
    ],
)
def test_a_limit_left_out_is_the_accounts(settings: dict[str, int], throttle: Throttle) -> None:
    # API Gateway applies its account limits (10,000 a second, a burst of 5,000) for the one
    # of the two a stage leaves out
    assert stage_stack("Api", **settings).throttling().default == throttle


def test_a_bucket_with_only_a_burst_set_refills_at_the_account_rate() -> None:
    throttle = stage_stack("Api", ThrottlingBurstLimit=2).throttling().default
    assert throttle is not None
    now = [0.0]
    bucket = TokenBucket(throttle, clock=lambda: now[0])
    # Two takes at one instant: no time passed, so nothing refilled (and nothing is NaN)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    now[0] += 0.0005  # five tokens at 10,000 a second, capped at the burst of two
    assert [bucket.take() for _ in range(3)] == [True, True, False]


def test_throttles_in_a_template_of_two_http_apis_are_refused() -> None:
    stack = stage_stack("Api", "OtherApi", ThrottlingRateLimit=5, ThrottlingBurstLimit=5)
    with pytest.raises(ValueError, match="one HttpApi only; this one has 2: Api, OtherApi"):
        stack.throttling()
    assert stage_stack("Api", "OtherApi").throttling() == Throttling()  # no throttle: served


def test_an_unknown_parameter_override_is_an_error() -> None:
    with pytest.raises(ValueError, match="no parameter ApiThrottlingLimit"):
        Stack.load(overrides={"ApiThrottlingLimit": "7"})


# --- requests during the start-up --------------------------------------------------------


def _event(headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"headers": headers or {}}


def test_requests_that_could_see_the_bootstrap_wait_for_it() -> None:
    # Given a bootstrap (the signing keys, the admin) that has not finished
    release = threading.Event()

    def admin() -> None:
        release.wait()

    bootstrap = Bootstrap([("admin", admin)], Phases())
    functions = Answering()
    gated = GatedInvoker(functions, bootstrap, signers={"Auth"})
    threading.Thread(target=bootstrap.run, args=(threading.Event(),), daemon=True).start()
    with ThreadPoolExecutor(max_workers=2) as pool:
        sign_in = pool.submit(gated.invoke, "Auth", _event())
        with_token = pool.submit(gated.invoke, "Tasks", _event({"authorization": "Bearer x"}))
        # When an anonymous request reaches another function, it is answered at once
        assert gated.invoke("Health", _event()).outcome is Outcome.OK
        assert [lid for lid, _ in functions.events] == ["Health"]
        assert not sign_in.done()
        assert not with_token.done()
        # And the sign-in and the request with a token run once the bootstrap is done
        release.set()
        assert sign_in.result().outcome is Outcome.OK
        assert with_token.result().outcome is Outcome.OK
    assert sorted(lid for lid, _ in functions.events) == ["Auth", "Health", "Tasks"]


def test_a_failed_bootstrap_fails_the_requests_that_need_it() -> None:
    def broken() -> None:
        raise RuntimeError("moto is gone")

    bootstrap = Bootstrap([("signing keys", broken)], Phases())
    bootstrap.run(threading.Event())
    functions = Answering()
    gated = GatedInvoker(functions, bootstrap, signers={"Auth"})
    assert gated.invoke("Auth", _event()).outcome is Outcome.ERROR
    assert gated.invoke("Health", _event()).outcome is Outcome.OK
    assert [lid for lid, _ in functions.events] == ["Health"]


class Warms:
    """A function host whose warming blocks until ``release`` is set, or fails as ``error``."""

    def __init__(self, release: threading.Event | None = None, error: Exception | None = None):
        self.release = release
        self.error = error
        self.warmed = threading.Event()

    def warm(self) -> None:
        if self.release is not None:
            self.release.wait()
        if self.error is not None:
            raise self.error
        self.warmed.set()


def test_signed_in_requests_do_not_wait_for_the_functions_to_warm() -> None:
    # Given a finished bootstrap, and a warming that blocks until the test releases it
    bootstrap = Bootstrap([("signing keys", lambda: None)], Phases())
    bootstrap.run(threading.Event())
    release = threading.Event()
    slow = Warms(release)
    warming = Warming({"Slow": slow}, bootstrap.done, Phases())
    stop = threading.Event()
    threading.Thread(target=warming.run, args=(stop,), daemon=True).start()
    functions = Answering()
    gated = GatedInvoker(functions, bootstrap, signers={"Auth"})
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            # When a sign-in and a request with a token arrive while the warming is stuck
            sign_in = pool.submit(gated.invoke, "Auth", _event())
            with_token = pool.submit(gated.invoke, "Tasks", _event({"authorization": "Bearer x"}))
            # Then both run (the timeout only stops a broken gate from hanging the suite)
            assert sign_in.result(timeout=30).outcome is Outcome.OK
            assert with_token.result(timeout=30).outcome is Outcome.OK
        assert not warming.done.is_set()
    finally:
        release.set()
    assert warming.done.wait(timeout=30)
    assert slow.warmed.is_set()


def test_a_function_that_fails_to_warm_fails_no_request_and_no_other_warming() -> None:
    # Given a bootstrap that succeeded, and one function whose first process cannot start
    bootstrap = Bootstrap([("admin", lambda: None)], Phases())
    bootstrap.run(threading.Event())
    broken, healthy = Warms(error=OSError("cannot spawn")), Warms()
    warming = Warming({"Broken": broken, "Healthy": healthy}, bootstrap.done, Phases())
    # When the warming runs
    warming.run(threading.Event())
    # Then the other function is warm, and the failure is named, not raised
    assert healthy.warmed.is_set()
    assert warming.done.is_set()
    assert warming.failed == {"Broken": "OSError: cannot spawn"}
    # And signed-in requests still run
    assert bootstrap.failed is None
    gated = GatedInvoker(Answering(), bootstrap, signers={"Auth"})
    assert gated.invoke("Auth", _event()).outcome is Outcome.OK
    assert gated.invoke("Tasks", _event({"authorization": "Bearer x"})).outcome is Outcome.OK


def test_the_warming_waits_for_the_bootstrap() -> None:
    # Given a bootstrap that has not ended
    bootstrap_done = threading.Event()
    host = Warms()
    warming = Warming({"Echo": host}, bootstrap_done, Phases())
    thread = threading.Thread(target=warming.run, args=(threading.Event(),), daemon=True)
    thread.start()
    # Then nothing warms until it has (the argon2 hash and the first requests keep the cores)
    assert not host.warmed.wait(timeout=0.2)
    bootstrap_done.set()
    assert host.warmed.wait(timeout=30)
    thread.join(timeout=30)
    assert warming.done.is_set()
