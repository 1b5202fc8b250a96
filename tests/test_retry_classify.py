"""Tests for hystrixpy.retry's error classification and Retry-After, with real HTTP clients."""

from __future__ import annotations

import email.message
import email.utils
import http.server
import io
import socket
import sys
import threading
import urllib.error
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import urllib3.exceptions

from hystrixpy.events import FailureType
from hystrixpy.exceptions import (
    BadRequestError,
    CallTimeoutError,
    CircuitBreakerError,
    CommandTimeoutError,
    HystrixRuntimeError,
    RejectedError,
    ShortCircuitedError,
)
from hystrixpy.retry import is_transient, retry
from hystrixpy.testing import FakeClock, use_clock

WALL_START = 1_700_000_000.0


@pytest.fixture
def sleepy() -> Iterator[FakeClock]:
    """A fake clock (wall time 1,700,000,000) whose sleeps move it on at once."""
    fake = FakeClock(wall_start=WALL_START, sleep_advances=True)
    with use_clock(fake):
        yield fake


class WithStatus(Exception):
    """An error carrying an HTTP status the way some client library might."""

    def __init__(self, status: object, *, attribute: str = "status", headers: Any = None) -> None:
        super().__init__(status)
        setattr(self, attribute, status)
        if headers is not None:
            self.headers = headers


class Response:
    """A response object as requests and httpx attach them to their errors."""

    def __init__(self, status_code: int, headers: Any = None) -> None:
        self.status_code = status_code
        self.headers = {} if headers is None else headers


class WithResponse(Exception):
    def __init__(self, status_code: int, headers: Any = None) -> None:
        super().__init__(status_code)
        self.response = Response(status_code, headers)


def failed_command(failure: FailureType, cause: BaseException | None = None) -> HystrixRuntimeError:
    error = HystrixRuntimeError("GetUser failed", failure_type=failure, command_class=None)
    error.__cause__ = cause
    return error


def http_error(status: int, headers: dict[str, str] | None = None) -> urllib.error.HTTPError:
    message = email.message.Message()
    for name, value in (headers or {}).items():
        message[name] = value
    error = urllib.error.HTTPError("http://example.test", status, "status", message, io.BytesIO())
    error.close()
    return error


TRANSIENT = [
    ConnectionError("reset"),
    ConnectionRefusedError(),
    ConnectionResetError(),
    BrokenPipeError(),
    TimeoutError(),
    TimeoutError("timed out"),
    CommandTimeoutError(),
    CallTimeoutError(),
    failed_command(FailureType.TIMEOUT),
    failed_command(FailureType.REJECTED_THREAD_EXECUTION),
    failed_command(FailureType.REJECTED_SEMAPHORE_EXECUTION),
    failed_command(FailureType.COMMAND_EXCEPTION, ConnectionError()),
    failed_command(
        FailureType.COMMAND_EXCEPTION, failed_command(FailureType.COMMAND_EXCEPTION, TimeoutError())
    ),
    *[WithStatus(status) for status in (408, 429, 500, 502, 503, 504)],
    WithStatus(503, attribute="status_code"),
    WithResponse(502),
    requests.exceptions.ConnectionError(),
    requests.exceptions.Timeout(),
    requests.exceptions.ConnectTimeout(),
    requests.exceptions.ReadTimeout(),
    requests.exceptions.HTTPError(response=Response(503)),  # type: ignore[arg-type]
    httpx.ConnectError("refused"),
    httpx.ReadError("reset"),
    httpx.ReadTimeout("slow"),
    httpx.PoolTimeout("busy"),
    urllib3.exceptions.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
    urllib3.exceptions.ReadTimeoutError(None, "/", "slow"),  # type: ignore[arg-type]
    urllib3.exceptions.ProtocolError("aborted"),
    urllib.error.URLError(ConnectionRefusedError()),
    urllib.error.URLError(TimeoutError()),
    http_error(503),
]
PERMANENT = [
    ValueError("bad"),
    RuntimeError("broken"),
    KeyError("missing"),
    OSError("disk"),
    socket.gaierror("no such host"),
    BadRequestError("your fault"),
    ShortCircuitedError("open"),
    CircuitBreakerError("open", breaker_name="db", retry_after=3.0),
    RejectedError("full"),
    failed_command(FailureType.SHORTCIRCUIT),
    failed_command(FailureType.BAD_REQUEST_EXCEPTION),
    failed_command(FailureType.REJECTED_SEMAPHORE_FALLBACK),
    failed_command(FailureType.COMMAND_EXCEPTION, ValueError()),
    failed_command(FailureType.COMMAND_EXCEPTION),
    *[WithStatus(status) for status in (400, 401, 403, 404, 409, 422, 501, 505)],
    WithStatus(404, attribute="status_code"),
    WithResponse(400),
    WithStatus(True),
    WithStatus("503"),
    type("NotReallyAConnectionError", (ConnectionError,), {"status": 404})(),
    requests.exceptions.SSLError(),
    requests.exceptions.HTTPError(response=Response(404)),  # type: ignore[arg-type]
    requests.exceptions.InvalidURL(),
    httpx.HTTPStatusError(
        "not found",
        request=httpx.Request("GET", "http://example.test"),
        response=httpx.Response(404),
    ),
    httpx.UnsupportedProtocol("ftp"),
    urllib.error.URLError("unknown url type"),
    urllib.error.URLError(socket.gaierror()),
    http_error(404),
    KeyboardInterrupt(),
    SystemExit(1),
    GeneratorExit(),
]


def _id(error: BaseException) -> str:
    status = getattr(error, "status", getattr(error, "status_code", None))
    failure = getattr(error, "failure_type", None)
    detail = f"[{status}]" if status is not None else ""
    if failure is not None:
        cause = type(error.__cause__).__name__ if error.__cause__ is not None else "no cause"
        detail = f"[{failure.name}, {cause}]"
    return f"{type(error).__module__}.{type(error).__qualname__}{detail}"


class TestIsTransient:
    @pytest.mark.parametrize("error", TRANSIENT, ids=_id)
    def test_transient(self, error: BaseException) -> None:
        """Network errors, timeouts, retryable HTTP statuses and timed-out or rejected commands."""
        assert is_transient(error) is True

    @pytest.mark.parametrize("error", PERMANENT, ids=_id)
    def test_permanent(self, error: BaseException) -> None:
        """Programming errors, other statuses, open circuits, bad requests and non-Exceptions."""
        assert is_transient(error) is False

    def test_a_deep_chain_of_command_causes_is_cut_short(self) -> None:
        """Causes are followed a few commands deep, not forever."""
        error: BaseException = ConnectionError()
        for _ in range(20):
            error = failed_command(FailureType.COMMAND_EXCEPTION, error)

        assert is_transient(error) is False

    def test_http_libraries_are_only_looked_up_never_imported(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With the HTTP libraries out of sys.modules their errors are unknown, and stay so."""
        names = ("requests.exceptions", "httpx", "urllib3.exceptions", "urllib.error")
        for name in names:
            monkeypatch.delitem(sys.modules, name)

        assert is_transient(requests.exceptions.ConnectionError()) is False
        assert is_transient(httpx.ConnectError("refused")) is False
        assert is_transient(urllib3.exceptions.ProtocolError()) is False
        assert is_transient(urllib.error.URLError(ConnectionRefusedError())) is False
        assert not [name for name in names if name in sys.modules]

    def test_a_half_imported_library_is_skipped(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A module in sys.modules without its error classes yet does not break classification."""
        monkeypatch.setitem(sys.modules, "httpx", type(sys)("httpx"))

        assert is_transient(ValueError()) is False
        assert is_transient(ConnectionError()) is True


class TestRetryAfter:
    def test_seconds(self, sleepy: FakeClock) -> None:
        """A 503 asking for 3 seconds waits 3 seconds."""
        error = WithStatus(503, headers={"Retry-After": "3"})

        assert retry(_failing_once(error), jitter=False) == "ok"
        assert sleepy.sleeps == [3.0]

    def test_http_date(self, sleepy: FakeClock) -> None:
        """A 429 with an HTTP date waits until that date on hystrixpy's wall clock."""
        when = email.utils.formatdate(WALL_START + 7, usegmt=True)
        error = WithResponse(429, headers={"Retry-After": when})

        assert retry(_failing_once(error), jitter=False) == "ok"
        assert sleepy.sleeps == [7.0]

    def test_a_date_without_a_zone_is_read_as_utc(self, sleepy: FakeClock) -> None:
        """An HTTP date marked -0000 (no zone) counts as UTC."""
        when = email.utils.formatdate(WALL_START + 2).replace("+0000", "-0000")

        retry(_failing_once(WithStatus(503, headers={"Retry-After": when})), jitter=False)

        assert sleepy.sleeps == [2.0]

    def test_a_past_date_adds_no_wait(self, sleepy: FakeClock) -> None:
        """A date already gone leaves the policy's own delay."""
        when = email.utils.formatdate(WALL_START - 60, usegmt=True)

        retry(_failing_once(WithStatus(503, headers={"Retry-After": when})), jitter=False)

        assert sleepy.sleeps == [0.1]

    def test_capped_by_max_delay(self, sleepy: FakeClock) -> None:
        """A server asking for an hour gets max_delay_ms."""
        error = WithStatus(429, headers={"Retry-After": "3600"})

        retry(_failing_once(error), jitter=False, max_delay_ms=2000)

        assert sleepy.sleeps == [2.0]

    def test_a_shorter_ask_keeps_the_longer_backoff(self, sleepy: FakeClock) -> None:
        """Retry-After is a minimum: the exponential delay wins when it is longer."""
        error = WithStatus(503, headers={"retry-after": "0"})

        retry(_failing_once(error), jitter=False)

        assert sleepy.sleeps == [0.1]

    def test_bytes_header_values_are_read(self, sleepy: FakeClock) -> None:
        """A header value given as bytes is decoded."""
        retry(_failing_once(WithStatus(503, headers={"Retry-After": b"1.5"})), jitter=False)

        assert sleepy.sleeps == [1.5]

    def test_headers_of_an_urllib_http_error(self, sleepy: FakeClock) -> None:
        """urllib's HTTPError carries its status and headers; both are read."""
        retry(_failing_once(http_error(503, {"Retry-After": "4"})), jitter=False)

        assert sleepy.sleeps == [4.0]

    @pytest.mark.parametrize(
        ("status", "header"),
        [
            (500, "5"),  # only 429 and 503 are honoured
            (503, "soon"),
            (503, "-3"),
            (503, "inf"),
            (503, "nan"),
            (503, None),
        ],
    )
    def test_ignored_values(self, sleepy: FakeClock, status: int, header: str | None) -> None:
        """Other statuses, unreadable, negative or missing values leave the policy's delay."""
        headers = {} if header is None else {"Retry-After": header}

        retry(_failing_once(WithStatus(status, headers=headers)), jitter=False)

        assert sleepy.sleeps == [0.1]

    def test_odd_header_containers_are_ignored(self, sleepy: FakeClock) -> None:
        """Headers without get(), or a non-text value, are no Retry-After."""
        retry(_failing_once(WithStatus(503, headers=["Retry-After: 5"])), jitter=False)
        retry(_failing_once(WithStatus(503, headers={"Retry-After": 5})), jitter=False)

        assert sleepy.sleeps == [0.1, 0.1]


def _failing_once(error: Exception) -> Any:
    calls = iter([error])

    def call() -> str:
        for pending in calls:
            raise pending
        return "ok"

    return call


class ScriptedServer(http.server.ThreadingHTTPServer):
    """A loopback HTTP server answering each GET with the next scripted status and headers."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ScriptedHandler)
        self.script: list[tuple[int, dict[str, str]]] = []
        self.requests = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/user/7"

    def next_answer(self) -> tuple[int, dict[str, str]]:
        with self.lock:
            self.requests += 1
            return self.script.pop(0)


class _ScriptedHandler(http.server.BaseHTTPRequestHandler):
    server: ScriptedServer

    def do_GET(self) -> None:
        status, headers = self.server.next_answer()
        body = b"ok" if status == 200 else b"try later"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the server's counters instead."""


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A scripted HTTP server on a free loopback port, serving from a thread."""
    scripted = ScriptedServer()
    thread = threading.Thread(target=scripted.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield scripted
    finally:
        scripted.shutdown()
        scripted.server_close()
        thread.join(5)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TestWithRequests:
    def test_503_then_200(self, server: ScriptedServer, sleepy: FakeClock) -> None:
        """requests' HTTPError for a 503 is retried after its Retry-After, then the 200 answers."""
        server.script = [(503, {"Retry-After": "2"}), (200, {})]

        def get_user() -> str:
            with requests.Session() as session:
                response = session.get(server.url, timeout=5)
                response.raise_for_status()
                return response.text

        assert retry(get_user, jitter=False) == "ok"
        assert server.requests == 2
        assert sleepy.sleeps == [2.0]

    def test_404_is_not_retried(self, server: ScriptedServer, sleepy: FakeClock) -> None:
        """A 404 is raised after one request."""
        server.script = [(404, {})]

        def get_user() -> str:
            with requests.Session() as session:
                response = session.get(server.url, timeout=5)
                response.raise_for_status()
                return response.text

        with pytest.raises(requests.HTTPError):
            retry(get_user)
        assert server.requests == 1

    def test_connection_refused_is_retried(self, sleepy: FakeClock) -> None:
        """A refused connection is a requests ConnectionError, retried until attempts run out."""
        url = f"http://127.0.0.1:{_closed_port()}/"

        def get() -> str:
            with requests.Session() as session:
                return session.get(url, timeout=5).text

        with pytest.raises(requests.ConnectionError) as raised:
            retry(get, jitter=False)
        assert raised.value.retry_attempts == 3  # type: ignore[attr-defined]
        assert sleepy.sleeps == [0.1, 0.2]


class TestWithHttpx:
    def test_503_then_200(self, server: ScriptedServer, sleepy: FakeClock) -> None:
        """httpx's HTTPStatusError for a 503 is retried after its Retry-After date."""
        when = email.utils.formatdate(WALL_START + 3, usegmt=True)
        server.script = [(503, {"Retry-After": when}), (200, {})]

        with httpx.Client() as client:

            def get_user() -> str:
                response = client.get(server.url)
                response.raise_for_status()
                return response.text

            assert retry(get_user, jitter=False) == "ok"
        assert server.requests == 2
        assert sleepy.sleeps == [3.0]

    def test_connection_refused_is_retried(self, sleepy: FakeClock) -> None:
        """httpx.ConnectError is retried."""
        url = f"http://127.0.0.1:{_closed_port()}/"

        with httpx.Client() as client, pytest.raises(httpx.ConnectError):
            retry(lambda: client.get(url), max_attempts=2, jitter=False)
        assert sleepy.sleeps == [0.1]
