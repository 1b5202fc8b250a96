"""Tests for hystrixpy.stream: the Hystrix metrics stream, served over real HTTP on loopback."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import queue
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

import hystrixpy
from hystrixpy import (
    BadRequestError,
    Command,
    CommandProperties,
    EventType,
    HystrixRuntimeError,
    IsolationStrategy,
    ThreadPoolProperties,
    registry,
    stream,
)
from hystrixpy.stream import MetricsStream, StreamApp, StreamServer, start_http_server
from hystrixpy.testing import FakeClock, use_clock

SEMAPHORE = IsolationStrategy.SEMAPHORE
PERCENTS: list[float] = [0, 25, 50, 75, 90, 95, 99, 99.5, 100]
PERCENT_KEYS = ["0", "25", "50", "75", "90", "95", "99", "99.5", "100"]
FAKE_WALL_START_MS = 1_700_000_000_000  # FakeClock's default wall-clock start, in ms

INT, BOOL, STR, LATENCY, OPTIONAL_STR = "int", "bool", "str", "latency", "str or null"

# The HystrixCommand fields and their JSON types, in the order of the reference's example.
COMMAND_FIELDS = {
    "type": STR,
    "name": STR,
    "group": STR,
    "currentTime": INT,
    "isCircuitBreakerOpen": BOOL,
    "errorPercentage": INT,
    "errorCount": INT,
    "requestCount": INT,
    "rollingCountBadRequests": INT,
    "rollingCountCollapsedRequests": INT,
    "rollingCountEmit": INT,
    "rollingCountExceptionsThrown": INT,
    "rollingCountFailure": INT,
    "rollingCountFallbackEmit": INT,
    "rollingCountFallbackFailure": INT,
    "rollingCountFallbackMissing": INT,
    "rollingCountFallbackRejection": INT,
    "rollingCountFallbackSuccess": INT,
    "rollingCountResponsesFromCache": INT,
    "rollingCountSemaphoreRejected": INT,
    "rollingCountShortCircuited": INT,
    "rollingCountSuccess": INT,
    "rollingCountThreadPoolRejected": INT,
    "rollingCountTimeout": INT,
    "rollingCountRetries": INT,  # hystrixpy's own, after Hystrix's counts
    "rollingCountRateLimited": INT,
    "currentConcurrentExecutionCount": INT,
    "rollingMaxConcurrentExecutionCount": INT,
    "latencyExecute_mean": INT,
    "latencyExecute": LATENCY,
    "latencyTotal_mean": INT,
    "latencyTotal": LATENCY,
    "propertyValue_circuitBreakerRequestVolumeThreshold": INT,
    "propertyValue_circuitBreakerSleepWindowInMilliseconds": INT,
    "propertyValue_circuitBreakerErrorThresholdPercentage": INT,
    "propertyValue_circuitBreakerForceOpen": BOOL,
    "propertyValue_circuitBreakerForceClosed": BOOL,
    "propertyValue_circuitBreakerEnabled": BOOL,
    "propertyValue_executionIsolationStrategy": STR,
    "propertyValue_executionIsolationThreadTimeoutInMilliseconds": INT,
    "propertyValue_executionTimeoutInMilliseconds": INT,
    "propertyValue_executionIsolationThreadInterruptOnTimeout": BOOL,
    "propertyValue_executionIsolationThreadPoolKeyOverride": OPTIONAL_STR,
    "propertyValue_executionIsolationSemaphoreMaxConcurrentRequests": INT,
    "propertyValue_fallbackIsolationSemaphoreMaxConcurrentRequests": INT,
    "propertyValue_metricsRollingStatisticalWindowInMilliseconds": INT,
    "propertyValue_requestCacheEnabled": BOOL,
    "propertyValue_requestLogEnabled": BOOL,
    "reportingHosts": INT,
    "threadPool": STR,
}

# The HystrixThreadPool fields and their JSON types, in the order of the reference's example.
POOL_FIELDS = {
    "type": STR,
    "name": STR,
    "currentTime": INT,
    "currentActiveCount": INT,
    "currentCompletedTaskCount": INT,
    "currentCorePoolSize": INT,
    "currentLargestPoolSize": INT,
    "currentMaximumPoolSize": INT,
    "currentPoolSize": INT,
    "currentQueueSize": INT,
    "currentTaskCount": INT,
    "rollingCountThreadsExecuted": INT,
    "rollingMaxActiveThreads": INT,
    "rollingCountCommandRejections": INT,
    "propertyValue_queueSizeRejectionThreshold": INT,
    "propertyValue_metricsRollingStatisticalWindowInMilliseconds": INT,
    "reportingHosts": INT,
}

# What the dashboard's scripts throw "Key Missing" for (the reference's list).
DASHBOARD_COMMAND_FIELDS = {
    "reportingHosts",
    "type",
    "name",
    "group",
    "isCircuitBreakerOpen",
    "errorPercentage",
    "errorCount",
    "requestCount",
    "rollingCountCollapsedRequests",
    "rollingCountExceptionsThrown",
    "rollingCountFailure",
    "rollingCountFallbackFailure",
    "rollingCountFallbackRejection",
    "rollingCountFallbackSuccess",
    "rollingCountResponsesFromCache",
    "rollingCountSemaphoreRejected",
    "rollingCountShortCircuited",
    "rollingCountSuccess",
    "rollingCountThreadPoolRejected",
    "rollingCountTimeout",
    "rollingCountBadRequests",
    "currentConcurrentExecutionCount",
    "latencyExecute_mean",
    "latencyExecute",
    "latencyTotal_mean",
    "latencyTotal",
    *(
        "propertyValue_" + name
        for name in (
            "circuitBreakerRequestVolumeThreshold",
            "circuitBreakerSleepWindowInMilliseconds",
            "circuitBreakerErrorThresholdPercentage",
            "circuitBreakerForceOpen",
            "circuitBreakerForceClosed",
            "executionIsolationStrategy",
            "executionIsolationThreadTimeoutInMilliseconds",
            "executionIsolationThreadInterruptOnTimeout",
            "executionIsolationSemaphoreMaxConcurrentRequests",
            "fallbackIsolationSemaphoreMaxConcurrentRequests",
            "requestCacheEnabled",
            "requestLogEnabled",
            "metricsRollingStatisticalWindowInMilliseconds",
        )
    ),
}
DASHBOARD_POOL_FIELDS = set(POOL_FIELDS) - {"currentTime", "rollingCountCommandRejections"}

# Each rolling count of a HystrixCommand message and the event it counts.
ROLLING_COUNT_EVENTS = {
    "rollingCountBadRequests": EventType.BAD_REQUEST,
    "rollingCountCollapsedRequests": EventType.COLLAPSED,
    "rollingCountEmit": EventType.EMIT,
    "rollingCountExceptionsThrown": EventType.EXCEPTION_THROWN,
    "rollingCountFailure": EventType.FAILURE,
    "rollingCountFallbackEmit": EventType.FALLBACK_EMIT,
    "rollingCountFallbackFailure": EventType.FALLBACK_FAILURE,
    "rollingCountFallbackMissing": EventType.FALLBACK_MISSING,
    "rollingCountFallbackRejection": EventType.FALLBACK_REJECTION,
    "rollingCountFallbackSuccess": EventType.FALLBACK_SUCCESS,
    "rollingCountResponsesFromCache": EventType.RESPONSE_FROM_CACHE,
    "rollingCountSemaphoreRejected": EventType.SEMAPHORE_REJECTED,
    "rollingCountShortCircuited": EventType.SHORT_CIRCUITED,
    "rollingCountSuccess": EventType.SUCCESS,
    "rollingCountThreadPoolRejected": EventType.THREAD_POOL_REJECTED,
    "rollingCountTimeout": EventType.TIMEOUT,
    "rollingCountRetries": EventType.RETRY,
    "rollingCountRateLimited": EventType.RATE_LIMITED,
}

SSE_HEADERS = {
    "Content-Type": "text/event-stream;charset=UTF-8",
    "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
    "Pragma": "no-cache",
}
NONSENSE_DELAYS = ["abc", "0", "10", "999999", "49", "60001", "-500", "1.5", "1e3"]


# -- time ---------------------------------------------------------------------


class ParkingClock(FakeClock):
    """A FakeClock that also tells the test which threads wait on it, and when.

    A test advances time only once the stream is parked waiting for its next
    interval, so no advance can land before the wait's deadline is set.
    """

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()
        self.parked = 0
        self.waiters: list[threading.Thread] = []

    def wait(self, lock: threading.Lock, timeout: float) -> bool:
        deadline = self.monotonic() + timeout
        with self._changed:
            self.parked += 1
            self.waiters.append(threading.current_thread())
            self._changed.notify_all()
        try:
            while not lock.acquire(True, 0.001):
                if self.monotonic() >= deadline:
                    return lock.acquire(False)
            return True
        finally:
            with self._changed:
                self.parked -= 1
                self._changed.notify_all()

    def wait_until_parked(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until ``count`` threads wait on this clock (or ``timeout`` real seconds pass)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.parked >= count, timeout)


@pytest.fixture
def parking_clock() -> Iterator[ParkingClock]:
    """A ParkingClock installed as hystrixpy's clock for the test."""
    fake = ParkingClock()
    with use_clock(fake):
        yield fake


# -- reading the stream -------------------------------------------------------


def parse_batch(lines: list[bytes]) -> list[dict[str, Any]]:
    """The messages of one batch, checking its framing: ``data:`` events, then a ping."""
    assert lines[-2:] == [b"ping: \n", b"\n"]
    events = lines[:-2]
    assert len(events) % 2 == 0
    found = []
    for data, blank in zip(events[::2], events[1::2], strict=True):
        assert data.startswith(b"data: {")
        assert data.endswith(b"}\n")
        assert blank == b"\n"
        found.append(json.loads(data[len(b"data: ") :]))
    return found


def parse_chunk(chunk: bytes) -> list[dict[str, Any]]:
    """The messages of one chunk of a MetricsStream."""
    return parse_batch(chunk.splitlines(keepends=True))


def find(found: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one message of type ``kind`` named ``name``."""
    matching = [m for m in found if m["type"] == kind and m["name"] == name]
    assert len(matching) == 1, f"{kind} {name!r}: {len(matching)} messages"
    return matching[0]


def names(found: list[dict[str, Any]], kind: str) -> set[str]:
    """The names of the messages of type ``kind``."""
    return {m["name"] for m in found if m["type"] == kind}


def assert_types(message: dict[str, Any], fields: dict[str, str]) -> None:
    """Every field has its JSON type (an int is never a bool, latencies are objects of ints)."""
    for field, kind in fields.items():
        value = message[field]
        where = f"{message['type']} {message['name']!r}: {field}={value!r}"
        if kind == INT:
            assert type(value) is int, where
        elif kind == BOOL:
            assert type(value) is bool, where
        elif kind == STR:
            assert type(value) is str, where
        elif kind == OPTIONAL_STR:
            assert value is None or type(value) is str, where
        else:
            assert type(value) is dict, where
            assert list(value) == PERCENT_KEYS, where
            assert all(type(v) is int for v in value.values()), where


def nearest_rank(samples: list[int], percent: float) -> int:
    """The exact nearest-rank percentile of ``samples``."""
    ordered = sorted(samples)
    rank = max(math.ceil(percent / 100 * len(ordered)), 1)
    return ordered[rank - 1]


class StreamClient:
    """A real HTTP client on one stream; a reader thread hands over each whole batch."""

    def __init__(self, port: int, path: str, host: str = "127.0.0.1") -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=5)
        self.connection.request("GET", path)
        # Kept: for a response that lasts until the connection closes, getresponse() hands the
        # socket over to the response and forgets it.
        self._sock = self.connection.sock
        self.response = self.connection.getresponse()
        self.batches: queue.Queue[list[bytes] | BaseException | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        if self.response.status == 200:
            self._reader.start()

    def _read(self) -> None:
        lines: list[bytes] = []
        try:
            while True:
                line = self.response.readline()
                if not line:
                    self.batches.put(None)
                    return
                lines.append(line)
                if line == b"\n" and lines[-2:-1] == [b"ping: \n"]:
                    self.batches.put(lines)
                    lines = []
        except OSError as error:
            self.batches.put(error)

    def next_batch(self) -> list[bytes]:
        """The next whole batch (waiting up to 5 real seconds)."""
        item = self.batches.get(timeout=5)
        assert isinstance(item, list), f"expected a batch, got {item!r}"
        return item

    def next_messages(self) -> list[dict[str, Any]]:
        """The messages of the next batch."""
        return parse_batch(self.next_batch())

    def nothing_arrives(self) -> bool:
        """Whether no batch arrives within 50 real milliseconds."""
        try:
            self.batches.get(timeout=0.05)
        except queue.Empty:
            return True
        return False

    def close(self) -> None:
        """Hang up (the server notices at its next write)."""
        if self._sock is not None:
            with contextlib.suppress(OSError):  # the server may have closed it already
                self._sock.shutdown(socket.SHUT_RDWR)
        if self._reader.is_alive():
            self._reader.join(5)
        self.response.close()
        self.connection.close()
        if self._sock is not None:
            # The last reference to the socket: until it is closed the descriptor stays open,
            # the server's writes keep succeeding and, once the buffers fill, block.
            self._sock.close()


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server, each request on its own daemon thread."""

    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    """wsgiref's handler, without a line on stderr per request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Harness:
    """Starts stream servers and clients, and afterwards closes every client and frees its slot."""

    def __init__(self, clock: ParkingClock, shared: StreamServer) -> None:
        self.clock = clock
        #: A built-in server with the default options, shared by the tests of this module.
        self.shared = shared
        self._clients: list[StreamClient | http.client.HTTPConnection] = []
        self._apps: list[StreamApp] = [shared.app]
        self._stops: list[Callable[[], None]] = []

    def start(self, addr: str = "127.0.0.1", **options: Any) -> StreamServer:
        """start_http_server(0, ...), stopped after the test."""
        server = stream.start_http_server(0, addr, **options)
        self._apps.append(server.app)
        self._stops.append(server.close)
        return server

    def serve_wsgi(self, app: StreamApp) -> int:
        """Serve ``app`` with wsgiref on 127.0.0.1 (any free port); return the port."""
        httpd = make_server(
            "127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
        )
        thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        thread.start()

        def stop() -> None:
            httpd.shutdown()
            httpd.server_close()
            thread.join(5)

        self._apps.append(app)
        self._stops.append(stop)
        return int(httpd.server_address[1])

    def connect(self, port: int, path: str = "/hystrix.stream") -> StreamClient:
        """Open a stream and read its headers."""
        client = StreamClient(port, path)
        self._clients.append(client)
        return client

    def silent_client(self, port: int) -> http.client.HTTPConnection:
        """Ask for the stream and never read it (a small receive buffer fills at once)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.sock = sock
        self._clients.append(connection)
        connection.request("GET", "/hystrix.stream")
        return connection

    def first_messages(self) -> list[dict[str, Any]]:
        """The messages of the first batch a new client of the shared server receives."""
        return self.connect(self.shared.port, "/hystrix.stream?delay=50").next_messages()

    def free(self, app: StreamApp, count: int, step: float = 0.05) -> bool:
        """Advance time until exactly ``count`` streams are open.

        A server notices a client that went away only when it next writes, so
        time must pass for it to write.
        """
        for _ in range(250):
            if app.wait_for_connections(count, 0.02):
                return True
            self.clock.advance(step)
        return False

    def close(self) -> None:
        """Close every client, wait until every stream has ended, stop every server."""
        for client in self._clients:
            client.close()
        freed = [self.free(app, 0, step=60.0) for app in self._apps]
        for stop in self._stops:
            stop()
        assert all(freed), "a stream was still being served after its client closed"


def fetch(port: int, path: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    """GET a response that is not a stream: status, headers and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        response.close()
        return response.status, response.headers, body
    finally:
        connection.close()


@pytest.fixture(scope="module")
def shared_server() -> Iterator[StreamServer]:
    """One start_http_server(0) for the module (stopping a server takes up to half a second).

    Its short send timeout bounds how long a test's teardown can wait on a client whose
    socket the kernel keeps half-open.
    """
    server = stream.start_http_server(0, send_timeout=2.0)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def harness(parking_clock: ParkingClock, shared_server: StreamServer) -> Iterator[Harness]:
    """Servers and clients for one test, all closed afterwards."""
    made = Harness(parking_clock, shared_server)
    try:
        yield made
    finally:
        made.close()


def next_after_interval(client: StreamClient, clock: ParkingClock, delay: float) -> list[bytes]:
    """Check that no batch comes before ``delay`` seconds pass, and return the one that comes."""
    assert clock.wait_until_parked()
    clock.advance(delay * 0.9)
    assert client.nothing_arrives()
    clock.advance(delay * 0.2)
    return client.next_batch()


class Pull:
    """Calls next() on a stream from another thread and keeps what it returned."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.done = threading.Event()
        self.chunk: bytes | None = None
        self.stopped = False
        self.thread = threading.Thread(target=self._pull, args=(chunks,), daemon=True)
        self.thread.start()

    def _pull(self, chunks: Iterator[bytes]) -> None:
        try:
            self.chunk = next(chunks)
        except StopIteration:
            self.stopped = True
        finally:
            self.done.set()


# -- commands -------------------------------------------------------------------


class Ledger(Command[str]):
    """Does what its plan says, taking fake time, so every outcome can be produced on demand."""

    group_key = "StreamLedgerGroup"
    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE,
        execution_timeout_ms=100,
        execution_isolation_semaphore_max_concurrent_requests=1,
        circuit_breaker_request_volume_threshold=8,
        circuit_breaker_error_threshold_percentage=50,
    )

    def __init__(self, clock: FakeClock, plan: str, run_ms: int = 0) -> None:
        super().__init__()
        self.clock = clock
        self.plan = plan
        self.run_ms = run_ms

    def run(self) -> str:
        if self.plan == "nested":
            # The semaphore (one permit) is held by this execution: the inner one is rejected.
            assert Ledger(self.clock, "succeed").execute() == "fallback"
        self.clock.advance_ms(self.run_ms)
        if self.plan in ("fail", "fail-hard"):
            raise RuntimeError("dependency down")
        if self.plan == "bad":
            raise BadRequestError("bad argument")
        return "value"

    def get_fallback(self) -> str:
        if self.plan == "fail-hard":
            raise RuntimeError("fallback down too")
        return "fallback"


class Pooled(Command[str]):
    """Runs on a two-thread pool; can hold its worker until released."""

    group_key = "StreamPooledGroup"
    thread_pool_key = "StreamPooledPool"
    thread_pool_properties = ThreadPoolProperties(core_size=2)

    def __init__(
        self, started: threading.Event | None = None, release: threading.Event | None = None
    ) -> None:
        super().__init__()
        self.started = started
        self.release = release

    def run(self) -> str:
        if self.started is not None:
            self.started.set()
        if self.release is not None and not self.release.wait(5):
            raise RuntimeError("never released")
        return "value"

    def get_fallback(self) -> str:
        return "fallback"


class Quick(Command[str]):
    """Returns at once on the caller's thread."""

    group_key = "StreamQuickGroup"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> str:
        return "value"


class QuickPooled(Command[str]):
    """Returns at once on a pool worker."""

    group_key = "StreamQuickPooledGroup"

    def run(self) -> str:
        return "value"


class FailsOften(Command[str]):
    """Always fails, with a fallback."""

    group_key = "StreamFailsGroup"
    properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

    def run(self) -> str:
        raise RuntimeError("down")

    def get_fallback(self) -> str:
        return "fallback"


class FailsWithoutBreaker(FailsOften):
    """Always fails; has no circuit breaker."""

    properties = CommandProperties(
        execution_isolation_strategy=SEMAPHORE, circuit_breaker_enabled=False
    )


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


# -- the messages -----------------------------------------------------------------


class TestMessages:
    def test_every_message_has_every_field_with_its_json_type_in_hystrix_order(
        self, harness: Harness, parking_clock: ParkingClock
    ) -> None:
        """Every command and pool message carries Hystrix's fields, types and order."""
        for plan, run_ms in [("succeed", 10), ("fail", 5), ("succeed", 150)]:
            Ledger(parking_clock, plan, run_ms).execute()
        assert Pooled().execute() == "value"
        found = harness.first_messages()
        commands = [m for m in found if m["type"] == "HystrixCommand"]
        pools = [m for m in found if m["type"] == "HystrixThreadPool"]
        assert {"Ledger", "Pooled"} <= names(found, "HystrixCommand")
        assert "StreamPooledPool" in names(found, "HystrixThreadPool")
        assert len(commands) + len(pools) == len(found)
        for message in commands:
            assert list(message) == list(COMMAND_FIELDS)
            assert_types(message, COMMAND_FIELDS)
        for message in pools:
            assert list(message) == list(POOL_FIELDS)
            assert_types(message, POOL_FIELDS)

    def test_every_field_the_dashboard_requires_is_present(self, harness: Harness) -> None:
        """No message would make the dashboard throw "Key Missing"."""
        found = harness.first_messages()
        assert found
        for message in found:
            required = (
                DASHBOARD_COMMAND_FIELDS
                if message["type"] == "HystrixCommand"
                else DASHBOARD_POOL_FIELDS
            )
            assert required <= set(message), required - set(message)
            assert message["reportingHosts"] == 1

    def test_commands_come_before_pools(self, harness: Harness) -> None:
        """A batch lists the command messages, then the pool messages."""
        assert Pooled().execute() == "value"
        kinds = [m["type"] for m in harness.first_messages()]
        assert kinds == sorted(kinds)  # "HystrixCommand" < "HystrixThreadPool"
        assert set(kinds) == {"HystrixCommand", "HystrixThreadPool"}

    def test_values_match_the_metrics_after_a_known_sequence(
        self, harness: Harness, parking_clock: ParkingClock
    ) -> None:
        """Counts, health, breaker state and latencies match what the executions did."""
        clock = parking_clock
        assert Ledger(clock, "succeed", 10).execute() == "value"
        assert Ledger(clock, "succeed", 20).execute() == "value"
        assert Ledger(clock, "succeed", 31).execute() == "value"
        assert Ledger(clock, "fail", 5).execute() == "fallback"
        assert Ledger(clock, "succeed", 150).execute() == "fallback"  # past its 100 ms timeout
        assert Ledger(clock, "nested", 40).execute() == "value"  # its inner call is rejected
        with pytest.raises(BadRequestError):
            Ledger(clock, "bad").execute()
        with pytest.raises(HystrixRuntimeError):
            Ledger(clock, "fail-hard", 5).execute()  # 4 errors in 8 requests: the circuit opens
        assert Ledger(clock, "succeed", 10).execute() == "fallback"  # short-circuited

        message = find(harness.first_messages(), "HystrixCommand", "Ledger")
        metrics = hystrixpy.command_metrics("Ledger")
        expected_counts = dict.fromkeys(ROLLING_COUNT_EVENTS, 0) | {
            "rollingCountSuccess": 4,
            "rollingCountFailure": 2,
            "rollingCountTimeout": 1,
            "rollingCountSemaphoreRejected": 1,
            "rollingCountShortCircuited": 1,
            "rollingCountBadRequests": 1,
            "rollingCountFallbackSuccess": 4,
            "rollingCountFallbackFailure": 1,
            "rollingCountExceptionsThrown": 2,
        }
        for field, event in ROLLING_COUNT_EVENTS.items():
            assert message[field] == expected_counts[field], field
            assert message[field] == metrics.rolling_count(event), field
        health = metrics.health_counts()
        assert (message["requestCount"], message["errorCount"], message["errorPercentage"]) == (
            8,
            4,
            50,
        )
        assert health.total_requests == 8
        assert health.error_count == 4
        assert health.error_percentage == 50
        assert message["isCircuitBreakerOpen"] is True
        assert hystrixpy.circuit_breaker("Ledger").is_open()
        assert message["currentConcurrentExecutionCount"] == 0
        assert message["rollingMaxConcurrentExecutionCount"] == 1
        assert metrics.rolling_max_concurrent_executions == 1

        execution_samples = [10, 20, 31, 5, 150, 40, 0, 5]  # run() alone, when it ran
        total_samples = [10, 20, 31, 5, 150, 0, 40, 0, 5, 0]  # as each caller saw it
        for field, samples, percentiles, mean in [
            (
                "latencyExecute",
                execution_samples,
                metrics.execution_time_percentiles(PERCENTS),
                metrics.execution_time_mean(),
            ),
            (
                "latencyTotal",
                total_samples,
                metrics.total_time_percentiles(PERCENTS),
                metrics.total_time_mean(),
            ),
        ]:
            assert message[field] == dict(zip(PERCENT_KEYS, percentiles, strict=True))
            assert message[field + "_mean"] == mean == round(sum(samples) / len(samples))
            assert message[field]["100"] == max(samples)
            for key, percent in zip(PERCENT_KEYS, PERCENTS, strict=True):
                exact = nearest_rank(samples, percent)
                assert abs(message[field][key] - exact) <= max(1, 0.02 * exact), (field, key)

        assert message["propertyValue_executionIsolationStrategy"] == "SEMAPHORE"
        assert message["propertyValue_executionTimeoutInMilliseconds"] == 100
        assert message["propertyValue_executionIsolationSemaphoreMaxConcurrentRequests"] == 1
        assert message["propertyValue_circuitBreakerRequestVolumeThreshold"] == 8

    def test_pool_and_command_values_while_workers_are_busy(self, harness: Harness) -> None:
        """With both workers busy and one command rejected, the gauges and counts say so."""
        for _ in range(3):
            assert Pooled().execute() == "value"
        release = threading.Event()
        started = [threading.Event(), threading.Event()]
        futures = []
        try:
            futures = [Pooled(event, release).queue() for event in started]
            assert all(event.wait(5) for event in started)
            assert Pooled().execute() == "fallback"  # no worker free and no queue

            found = harness.first_messages()
            pool = find(found, "HystrixThreadPool", "StreamPooledPool")
            pool_metrics = hystrixpy.thread_pool_metrics("StreamPooledPool")
            command = find(found, "HystrixCommand", "Pooled")
            health = hystrixpy.command_metrics("Pooled").health_counts()
        finally:
            release.set()
        assert [future.result(5) for future in futures] == ["value", "value"]

        assert pool == pool | {
            "currentActiveCount": 2,
            "currentCompletedTaskCount": 3,
            "currentCorePoolSize": 2,
            "currentLargestPoolSize": 2,
            "currentMaximumPoolSize": 2,
            "currentPoolSize": 2,
            "currentQueueSize": 0,
            "currentTaskCount": 5,
            "rollingCountThreadsExecuted": 5,
            "rollingMaxActiveThreads": 2,
            "rollingCountCommandRejections": 1,
            "propertyValue_queueSizeRejectionThreshold": 5,
            "propertyValue_metricsRollingStatisticalWindowInMilliseconds": 10000,
        }
        assert pool_metrics.rolling_count_threads_executed == 5
        assert pool_metrics.rolling_count_threads_rejected == 1
        assert pool_metrics.current_largest_pool_size == 2
        assert command["threadPool"] == "StreamPooledPool"
        assert command["group"] == "StreamPooledGroup"
        assert command["currentConcurrentExecutionCount"] == 2
        assert command["rollingMaxConcurrentExecutionCount"] == 2
        assert command["rollingCountSuccess"] == 3
        assert command["rollingCountThreadPoolRejected"] == 1
        assert command["rollingCountFallbackSuccess"] == 1
        assert (command["requestCount"], command["errorCount"], command["errorPercentage"]) == (
            health.total_requests,
            health.error_count,
            health.error_percentage,
        )
        assert (health.total_requests, health.error_count, health.error_percentage) == (4, 1, 25)
        assert command["propertyValue_executionIsolationStrategy"] == "THREAD"
        assert command["propertyValue_executionIsolationThreadPoolKeyOverride"] is None

    def test_property_values_are_the_configured_ones(
        self, harness: Harness, parking_clock: ParkingClock
    ) -> None:
        """propertyValue_* show overrides from configure(), and follow later changes."""

        class Configured(Command[str]):
            group_key = "StreamConfiguredGroup"
            command_key = "StreamConfigured"
            properties = CommandProperties(
                execution_timeout_ms=700, circuit_breaker_sleep_window_ms=4000
            )

            def run(self) -> str:
                return "value"

        class Defaulted(Command[str]):
            group_key = "StreamDefaultedGroup"

            def run(self) -> str:
                return "value"

        class ClassWins(Command[str]):
            group_key = "StreamClassWinsGroup"
            properties = CommandProperties(circuit_breaker_request_volume_threshold=3)

            def run(self) -> str:
                return "value"

        prefix = "hystrix.command.StreamConfigured."
        hystrixpy.configure(
            {
                prefix + "execution.isolation.thread.timeoutInMilliseconds": "250",
                prefix + "circuitBreaker.requestVolumeThreshold": 7,
                prefix + "circuitBreaker.sleepWindowInMilliseconds": 1234,
                prefix + "circuitBreaker.errorThresholdPercentage": 33,
                "command.StreamConfigured.circuit_breaker_force_closed": True,
                "command.StreamConfigured.execution_isolation_semaphore_max_concurrent_requests": 3,
                "command.StreamConfigured.fallback_isolation_semaphore_max_concurrent_requests": 4,
                "command.StreamConfigured.metrics_rolling_stats_time_ms": 2000,
                "command.StreamConfigured.request_cache_enabled": False,
                "command.StreamConfigured.request_log_enabled": "false",
                "command.StreamConfigured.thread_pool_key_override": "StreamOverridePool",
                "threadpool.StreamOverridePool.core_size": 3,
                "threadpool.StreamOverridePool.queue_size_rejection_threshold": 7,
                "threadpool.StreamOverridePool.metrics_rolling_stats_time_ms": 5000,
                "command.default.circuit_breaker_request_volume_threshold": 11,
            }
        )
        client = harness.connect(harness.shared.port, "/hystrix.stream?delay=50")
        found = client.next_messages()
        message = find(found, "HystrixCommand", "StreamConfigured")
        assert message == message | {
            "propertyValue_executionIsolationThreadTimeoutInMilliseconds": 250,
            "propertyValue_executionTimeoutInMilliseconds": 250,
            "propertyValue_circuitBreakerRequestVolumeThreshold": 7,
            "propertyValue_circuitBreakerSleepWindowInMilliseconds": 1234,
            "propertyValue_circuitBreakerErrorThresholdPercentage": 33,
            "propertyValue_circuitBreakerForceOpen": False,
            "propertyValue_circuitBreakerForceClosed": True,
            "propertyValue_executionIsolationSemaphoreMaxConcurrentRequests": 3,
            "propertyValue_fallbackIsolationSemaphoreMaxConcurrentRequests": 4,
            "propertyValue_metricsRollingStatisticalWindowInMilliseconds": 2000,
            "propertyValue_requestCacheEnabled": False,
            "propertyValue_requestLogEnabled": False,
            "propertyValue_executionIsolationThreadPoolKeyOverride": "StreamOverridePool",
            "threadPool": "StreamOverridePool",
        }
        pool = find(found, "HystrixThreadPool", "StreamOverridePool")
        assert pool["currentCorePoolSize"] == 3
        assert pool["currentMaximumPoolSize"] == 3
        assert pool["propertyValue_queueSizeRejectionThreshold"] == 7
        assert pool["propertyValue_metricsRollingStatisticalWindowInMilliseconds"] == 5000
        defaulted = find(found, "HystrixCommand", "Defaulted")
        assert defaulted["propertyValue_circuitBreakerRequestVolumeThreshold"] == 11
        class_wins = find(found, "HystrixCommand", "ClassWins")
        assert class_wins["propertyValue_circuitBreakerRequestVolumeThreshold"] == 3

        hystrixpy.configure({"command.StreamConfigured.execution_timeout_ms": 300})
        later = parse_batch(next_after_interval(client, parking_clock, 0.05))
        message = find(later, "HystrixCommand", "StreamConfigured")
        assert message["propertyValue_executionTimeoutInMilliseconds"] == 300
        assert message["propertyValue_executionIsolationThreadTimeoutInMilliseconds"] == 300

    def test_pool_reached_by_an_instance_pool_key_shows_its_configured_properties(
        self, harness: Harness
    ) -> None:
        """A pool named per instance shows configure() overrides, like any other pool."""
        assert QuickPooled().execute() == "value"
        assert QuickPooled(thread_pool_key="StreamSidePool").execute() == "value"
        hystrixpy.configure(
            {
                "threadpool.StreamSidePool.queue_size_rejection_threshold": 9,
                "threadpool.StreamSidePool.core_size": 4,
            }
        )
        pool = find(harness.first_messages(), "HystrixThreadPool", "StreamSidePool")
        assert pool["propertyValue_queueSizeRejectionThreshold"] == 9
        assert pool["currentCorePoolSize"] == 4

    def test_a_command_never_executed_is_sent_from_the_first_batch_with_its_pool(
        self, harness: Harness
    ) -> None:
        """A defined command shows at once, with zero counts, and so does its THREAD pool."""

        class NeverRun(Command[str]):
            group_key = "StreamNeverRunGroup"
            thread_pool_key = "StreamNeverRunPool"

            def run(self) -> str:
                return "value"

        class NeverRunOnCaller(Command[str]):
            group_key = "StreamNeverRunOnCallerGroup"
            properties = CommandProperties(execution_isolation_strategy=SEMAPHORE)

            def run(self) -> str:
                return "value"

        found = harness.first_messages()
        command = find(found, "HystrixCommand", "NeverRun")
        assert command["group"] == "StreamNeverRunGroup"
        assert command["threadPool"] == "StreamNeverRunPool"
        assert command["isCircuitBreakerOpen"] is False
        for field in [*ROLLING_COUNT_EVENTS, "requestCount", "errorCount", "errorPercentage"]:
            assert command[field] == 0, field
        assert command["latencyExecute"] == dict.fromkeys(PERCENT_KEYS, 0)
        assert command["latencyTotal"] == dict.fromkeys(PERCENT_KEYS, 0)
        assert command["latencyExecute_mean"] == command["latencyTotal_mean"] == 0
        pool = find(found, "HystrixThreadPool", "StreamNeverRunPool")
        for field in [
            "currentActiveCount",
            "currentCompletedTaskCount",
            "currentLargestPoolSize",
            "currentPoolSize",
            "currentQueueSize",
            "currentTaskCount",
            "rollingCountThreadsExecuted",
            "rollingMaxActiveThreads",
            "rollingCountCommandRejections",
        ]:
            assert pool[field] == 0, field
        assert pool["currentCorePoolSize"] == 10
        on_caller = find(found, "HystrixCommand", "NeverRunOnCaller")
        assert on_caller["propertyValue_executionIsolationStrategy"] == "SEMAPHORE"
        assert "StreamNeverRunOnCallerGroup" not in names(found, "HystrixThreadPool")

    def test_circuit_open_flag_follows_the_breaker(self, harness: Harness) -> None:
        """isCircuitBreakerOpen is false without a breaker, true when it trips or is forced."""

        class ForcedOpen(Command[str]):
            group_key = "StreamForcedGroup"
            properties = CommandProperties(circuit_breaker_force_open=True)

            def run(self) -> str:
                return "value"

        for _ in range(25):
            assert FailsOften().execute() == "fallback"
            assert FailsWithoutBreaker().execute() == "fallback"
        found = harness.first_messages()
        tripped = find(found, "HystrixCommand", "FailsOften")
        assert tripped["isCircuitBreakerOpen"] is True
        assert tripped["rollingCountShortCircuited"] == 5
        without = find(found, "HystrixCommand", "FailsWithoutBreaker")
        assert without["isCircuitBreakerOpen"] is False
        assert without["propertyValue_circuitBreakerEnabled"] is False
        assert without["rollingCountFailure"] == 25
        assert (without["requestCount"], without["errorPercentage"]) == (25, 100)
        forced = find(found, "HystrixCommand", "ForcedOpen")
        assert forced["isCircuitBreakerOpen"] is True
        assert forced["propertyValue_circuitBreakerForceOpen"] is True

        hystrixpy.configure({"command.Quick.circuit_breaker_force_open": True})
        quick = find(harness.first_messages(), "HystrixCommand", "Quick")
        assert quick["isCircuitBreakerOpen"] is True
        assert quick["propertyValue_circuitBreakerForceOpen"] is True
        hystrixpy.configure({"command.Quick.circuit_breaker_force_open": None})
        quick = find(harness.first_messages(), "HystrixCommand", "Quick")
        assert quick["isCircuitBreakerOpen"] is False

    def test_current_time_is_the_wall_clock_of_hystrixpy(
        self, harness: Harness, parking_clock: ParkingClock
    ) -> None:
        """currentTime is epoch milliseconds from hystrixpy's clock, at each batch."""
        client = harness.connect(harness.shared.port, "/hystrix.stream?delay=50")
        first = client.next_messages()
        assert {m["currentTime"] for m in first} == {FAKE_WALL_START_MS}
        second = parse_batch(next_after_interval(client, parking_clock, 0.05))
        assert {m["currentTime"] for m in second} == {int(parking_clock.wall_time() * 1000)}
        assert second[0]["currentTime"] > FAKE_WALL_START_MS

    def test_no_arguments_or_results_are_sent(self, harness: Harness) -> None:
        """The stream carries metrics only, never what a command was given or returned."""

        class Secretive(Command[str]):
            group_key = "StreamSecretGroup"

            def __init__(self, password: str) -> None:
                super().__init__()
                self.password = password

            def run(self) -> str:
                return "result-" + self.password

        assert Secretive("hunter2-argument").execute() == "result-hunter2-argument"
        batch = b"".join(harness.connect(harness.shared.port).next_batch())
        assert b"Secretive" in batch
        assert b"hunter2" not in batch


class TestCommandMessage:
    def test_current_time_defaults_to_now_or_is_given(self, parking_clock: ParkingClock) -> None:
        """Without a time, a message is stamped with the clock's wall time in ms."""
        assert Quick().execute() == "value"
        parking_clock.advance(1.5)
        state = next(s for s in registry.declared_states() if s.command_key == "Quick")
        assert stream.command_message(state)["currentTime"] == FAKE_WALL_START_MS + 1500
        assert stream.command_message(state, 42)["currentTime"] == 42
        assert stream.command_message(state, 42)["name"] == "Quick"


class TestFrame:
    def test_a_frame_holds_the_messages_encoded_in_order(self, parking_clock: ParkingClock) -> None:
        """frame() sends what messages() holds, every field in the same order, as data: events."""
        assert Quick().execute() == "value"
        assert QuickPooled().execute() == "value"

        sent = [json.loads(line[len(b"data: ") :]) for line in stream.frame().splitlines() if line]
        held = stream.messages()

        assert sent == held
        assert [list(message) for message in sent] == [list(message) for message in held]

    def test_a_frame_carries_any_key_name_and_an_open_circuit_as_json(
        self, parking_clock: ParkingClock
    ) -> None:
        """Keys holding "%" or non-ASCII text, and an open breaker, encode as in messages()."""
        for _ in range(25):
            assert FailsOften(command_key="Pay 50%s off \u2713").execute() == "fallback"
        assert FailsWithoutBreaker(command_key="100%d").execute() == "fallback"

        sent = [json.loads(line[len(b"data: ") :]) for line in stream.frame().splitlines() if line]
        held = stream.messages()

        assert sent == held
        opened = find(sent, "HystrixCommand", "Pay 50%s off \u2713")
        assert opened["isCircuitBreakerOpen"] is True
        assert (opened["errorCount"], opened["rollingCountShortCircuited"]) == (20, 5)
        assert find(sent, "HystrixCommand", "100%d")["isCircuitBreakerOpen"] is False

    def test_a_configuration_change_reaches_the_next_frame(
        self, parking_clock: ParkingClock
    ) -> None:
        """The property fields of a frame follow configure() from the next frame on."""
        assert Quick().execute() == "value"
        before = parse_chunk(stream.frame() + b"ping: \n\n")

        hystrixpy.configure({"command.Quick.circuit_breaker_request_volume_threshold": 7})
        after = parse_chunk(stream.frame() + b"ping: \n\n")

        field = "propertyValue_circuitBreakerRequestVolumeThreshold"
        assert find(before, "HystrixCommand", "Quick")[field] == 20
        assert find(after, "HystrixCommand", "Quick")[field] == 7


class TestPoolMessage:
    def test_current_time_defaults_to_now_or_is_given(self, parking_clock: ParkingClock) -> None:
        """Without a time, a pool message is stamped with the clock's wall time in ms."""
        assert QuickPooled().execute() == "value"
        parking_clock.advance(2.25)
        pool = hystrixpy.thread_pool("StreamQuickPooledGroup")
        assert stream.pool_message(pool)["currentTime"] == FAKE_WALL_START_MS + 2250
        assert stream.pool_message(pool, 7)["currentTime"] == 7
        assert stream.pool_message(pool, 7)["rollingCountThreadsExecuted"] == 1


# -- the iterator ------------------------------------------------------------------


class TestMetricsStream:
    def test_first_chunk_comes_at_once(self, parking_clock: ParkingClock) -> None:
        """The first chunk is ready without any time passing, and ends with a ping."""
        metrics_stream = MetricsStream(50)
        try:
            pull = Pull(metrics_stream)
            assert pull.done.wait(5)
            assert pull.chunk is not None
            assert pull.chunk.endswith(b"\n\nping: \n\n")
            assert "Quick" in names(parse_chunk(pull.chunk), "HystrixCommand")
        finally:
            metrics_stream.close()

    def test_next_chunk_comes_only_after_the_delay(self, parking_clock: ParkingClock) -> None:
        """The second chunk waits for the delay on hystrixpy's clock, then comes at once."""
        metrics_stream = MetricsStream(200)
        try:
            assert next(metrics_stream)
            pull = Pull(metrics_stream)
            assert parking_clock.wait_until_parked()
            assert not pull.done.wait(0.05)
            parking_clock.advance(0.18)
            assert not pull.done.wait(0.05)
            parking_clock.advance(0.04)
            assert pull.done.wait(5)
            assert pull.chunk is not None
            messages = parse_chunk(pull.chunk)
            assert {m["currentTime"] for m in messages} == {int(parking_clock.wall_time() * 1000)}
        finally:
            metrics_stream.close()

    def test_close_from_another_thread_ends_a_waiting_next(
        self, parking_clock: ParkingClock
    ) -> None:
        """close() wakes a next() waiting for its interval, which then stops the iteration."""
        metrics_stream = MetricsStream(60_000)
        assert next(metrics_stream)
        pull = Pull(metrics_stream)
        try:
            assert parking_clock.wait_until_parked()
            closer = threading.Thread(target=metrics_stream.close)
            closer.start()
            closer.join(5)
            assert not closer.is_alive()
            assert pull.done.wait(5)
            assert pull.stopped
            with pytest.raises(StopIteration):
                next(metrics_stream)
            metrics_stream.close()  # closing again is harmless
        finally:
            metrics_stream.close()
            pull.thread.join(5)

    def test_closed_before_the_first_chunk_yields_nothing(self) -> None:
        """A stream closed before it is read yields no chunk at all."""
        metrics_stream = MetricsStream()
        metrics_stream.close()
        assert list(metrics_stream) == []

    def test_a_for_loop_ends_once_the_stream_is_closed(self, parking_clock: ParkingClock) -> None:
        """Iterating with for stops after close(), so a streaming response ends."""
        metrics_stream = MetricsStream(100)
        chunks: list[bytes] = []

        def consume() -> None:
            for chunk in metrics_stream:
                chunks.append(chunk)
                if len(chunks) == 2:
                    metrics_stream.close()

        consumer = threading.Thread(target=consume)
        consumer.start()
        try:
            assert parking_clock.wait_until_parked()
            parking_clock.advance(0.1)
            consumer.join(5)
            assert not consumer.is_alive()
        finally:
            metrics_stream.close()
            consumer.join(5)
        assert len(chunks) == 2

    def test_default_delay_is_half_a_second(self) -> None:
        """Without a delay the interval is Hystrix's 500 ms."""
        assert MetricsStream().delay_ms == stream.DEFAULT_DELAY_MS == 500

    @pytest.mark.parametrize("delay_ms", [50, 60_000])
    def test_accepts_the_bounds(self, delay_ms: int) -> None:
        """The shortest and longest intervals are allowed."""
        assert MetricsStream(delay_ms).delay_ms == delay_ms

    @pytest.mark.parametrize("delay_ms", [-1, 0, 10, 49, 60_001])
    def test_rejects_a_delay_out_of_bounds(self, delay_ms: int) -> None:
        """An interval outside 50..60000 ms raises ValueError naming it."""
        with pytest.raises(ValueError, match=f"got {delay_ms}"):
            MetricsStream(delay_ms)


# -- the WSGI application ----------------------------------------------------------


class TestStreamApp:
    @pytest.mark.parametrize("max_connections", [0, -1])
    def test_rejects_fewer_than_one_connection(self, max_connections: int) -> None:
        """A cap below one connection is refused."""
        with pytest.raises(ValueError, match="max_connections"):
            StreamApp(max_connections=max_connections)
        with pytest.raises(ValueError, match="max_connections"):
            stream.make_wsgi_app(max_connections=max_connections)

    @pytest.mark.parametrize("delay_ms", [0, 10, 49, 60_001])
    def test_rejects_a_bad_default_delay(self, delay_ms: int) -> None:
        """A default interval outside 50..60000 ms is refused."""
        with pytest.raises(ValueError, match="delay"):
            StreamApp(delay_ms=delay_ms)
        with pytest.raises(ValueError, match="delay"):
            stream.make_wsgi_app(delay_ms=delay_ms)

    def test_closing_a_response_twice_frees_its_slot_once(self) -> None:
        """However often a server closes a stream's response, one slot comes back."""
        app = stream.make_wsgi_app(max_connections=1)
        statuses: list[str] = []

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            statuses.append(status)

        body = app({"QUERY_STRING": "delay=50"}, start_response)
        assert statuses == ["200 OK"]
        assert app.connections == 1
        body.close()  # type: ignore[attr-defined]
        body.close()  # type: ignore[attr-defined]
        assert app.connections == 0
        assert list(body) == []  # the stream is closed too
        again = app({}, start_response)
        try:
            assert statuses[-1] == "200 OK"
            assert app({}, start_response) == [b"MaxConcurrentConnections reached: 1\n"]
            assert statuses[-1] == "503 Service Unavailable"
        finally:
            again.close()  # type: ignore[attr-defined]
        assert app.connections == 0

    def test_defaults(self) -> None:
        """By default five streams at once, every 500 ms, none open yet."""
        app = stream.make_wsgi_app()
        assert isinstance(app, StreamApp)
        assert (app.max_connections, app.delay_ms, app.connections) == (5, 500, 0)
        assert not app.wait_for_connections(1, 0.01)


class TestMakeWsgiAppUnderWsgiref:
    def test_serves_the_stream_with_sse_headers_at_any_path(self, harness: Harness) -> None:
        """Mounted in wsgiref, the app streams batches with the SSE headers at its path."""
        port = harness.serve_wsgi(stream.make_wsgi_app())
        client = harness.connect(port, "/monitoring/anything")
        assert client.response.status == 200
        for name, value in SSE_HEADERS.items():
            assert client.response.getheader(name) == value
        assert "Quick" in names(client.next_messages(), "HystrixCommand")

    def test_batches_come_at_the_apps_interval_or_the_requested_one(
        self, harness: Harness, parking_clock: ParkingClock
    ) -> None:
        """The app's delay_ms is the interval, and ?delay= asks for another."""
        app = stream.make_wsgi_app(delay_ms=100)
        port = harness.serve_wsgi(app)
        client = harness.connect(port, "/")
        client.next_batch()
        parse_batch(next_after_interval(client, parking_clock, 0.1))
        client.close()
        assert harness.free(app, 0)
        asked = harness.connect(port, "/?delay=300")
        asked.next_batch()
        parse_batch(next_after_interval(asked, parking_clock, 0.3))

    @pytest.mark.parametrize("delay", NONSENSE_DELAYS)
    def test_nonsense_delay_gets_400(self, harness: Harness, delay: str) -> None:
        """A delay that is not an integer within bounds is answered 400 with a short text."""
        app = stream.make_wsgi_app()
        port = harness.serve_wsgi(app)
        status, headers, body = fetch(port, "/?delay=" + delay)
        assert status == 400
        assert headers["Content-Type"] == "text/plain;charset=UTF-8"
        assert b"delay" in body
        assert len(body) < 200
        assert app.connections == 0

    def test_connection_cap_gives_503_and_a_closed_client_frees_its_slot(
        self, harness: Harness
    ) -> None:
        """Past the cap a request gets 503; once a client leaves, a new one gets the stream."""
        app = stream.make_wsgi_app(max_connections=2, delay_ms=50)
        port = harness.serve_wsgi(app)
        first = harness.connect(port, "/")
        second = harness.connect(port, "/")
        first.next_batch()
        second.next_batch()
        assert app.connections == 2
        status, headers, body = fetch(port, "/")
        assert status == 503
        assert headers["Content-Type"] == "text/plain;charset=UTF-8"
        assert body == b"MaxConcurrentConnections reached: 2\n"
        assert app.connections == 2

        first.close()
        assert harness.free(app, 1)
        third = harness.connect(port, "/")
        assert third.response.status == 200
        assert third.next_messages()
        assert app.connections == 2

    def test_default_cap_is_five(self, harness: Harness) -> None:
        """Five streams are served at once by default, and a sixth is refused."""
        app = stream.make_wsgi_app()
        port = harness.serve_wsgi(app)
        clients = [harness.connect(port, "/") for _ in range(5)]
        assert all(client.response.status == 200 for client in clients)
        assert app.connections == 5
        assert fetch(port, "/")[0] == 503


# -- the built-in server -------------------------------------------------------------


class TestStartHttpServer:
    def test_serves_the_stream_with_sse_headers(self, harness: Harness) -> None:
        """/hystrix.stream answers 200 with the event-stream, no-cache headers."""
        server = harness.shared
        assert server.url == f"http://127.0.0.1:{server.port}/hystrix.stream"
        client = harness.connect(server.port)
        assert client.response.status == 200
        for name, value in SSE_HEADERS.items():
            assert client.response.getheader(name) == value
        assert server.thread.daemon

    @pytest.mark.parametrize("path", ["/", "/metrics", "/hystrix.stream/more", "/hystrix"])
    def test_other_paths_get_404(self, harness: Harness, path: str) -> None:
        """Only /hystrix.stream is served."""
        server = harness.shared
        status, headers, body = fetch(server.port, path)
        assert status == 404
        assert headers["Content-Type"] == "text/plain;charset=UTF-8"
        assert b"/hystrix.stream" in body
        assert server.app.connections == 0

    def test_frames_arrive_one_batch_at_a_time(
        self, harness: Harness, parking_clock: ParkingClock
    ) -> None:
        """The first batch arrives before any later one exists, each ended by a ping."""
        client = harness.connect(harness.shared.port, "/hystrix.stream?delay=50")
        first = client.next_batch()  # the stream never ends: nothing is buffered to the end
        assert first[-2:] == [b"ping: \n", b"\n"]
        assert "Ledger" in names(parse_batch(first), "HystrixCommand")
        assert client.nothing_arrives()
        assert Quick().execute() == "value"
        second = parse_batch(next_after_interval(client, parking_clock, 0.05))
        assert find(second, "HystrixCommand", "Quick")["rollingCountSuccess"] == 1
        third = parse_batch(next_after_interval(client, parking_clock, 0.05))
        assert find(third, "HystrixCommand", "Quick")["rollingCountSuccess"] == 1

    @pytest.mark.parametrize(
        ("query", "delay"),
        [("", 0.5), ("?delay=50", 0.05), ("?delay=250", 0.25), ("?delay=60000", 60.0)],
    )
    def test_delay_sets_the_interval(
        self, harness: Harness, parking_clock: ParkingClock, query: str, delay: float
    ) -> None:
        """Batches come every 500 ms, or every ?delay= milliseconds."""
        client = harness.connect(harness.shared.port, "/hystrix.stream" + query)
        client.next_batch()
        parse_batch(next_after_interval(client, parking_clock, delay))
        parse_batch(next_after_interval(client, parking_clock, delay))

    def test_server_default_delay(self, harness: Harness, parking_clock: ParkingClock) -> None:
        """start_http_server's delay_ms is the interval when a client asks for none."""
        server = harness.start(delay_ms=100)
        client = harness.connect(server.port)
        client.next_batch()
        parse_batch(next_after_interval(client, parking_clock, 0.1))

    @pytest.mark.parametrize("delay", NONSENSE_DELAYS)
    def test_nonsense_delay_gets_400(self, harness: Harness, delay: str) -> None:
        """A delay that is not an integer within bounds is answered 400 with a short text."""
        server = harness.shared
        status, headers, body = fetch(server.port, "/hystrix.stream?delay=" + delay)
        assert status == 400
        assert headers["Content-Type"] == "text/plain;charset=UTF-8"
        assert body == b"delay must be an integer from 50 to 60000 (ms)\n"
        assert server.app.connections == 0

    def test_connection_cap_gives_503_and_a_closed_client_frees_its_slot(
        self, harness: Harness
    ) -> None:
        """Past max_connections a request gets 503; a client that leaves frees its place."""
        server = harness.start(max_connections=2, delay_ms=50)
        first = harness.connect(server.port)
        second = harness.connect(server.port)
        first.next_batch()
        second.next_batch()
        assert server.app.connections == 2
        status, headers, body = fetch(server.port, "/hystrix.stream")
        assert status == 503
        assert headers["Content-Type"] == "text/plain;charset=UTF-8"
        assert body == b"MaxConcurrentConnections reached: 2\n"

        first.close()
        assert harness.free(server.app, 1)
        assert server.app.connections == 1
        third = harness.connect(server.port)
        assert third.response.status == 200
        third.next_batch()
        assert server.app.connections == 2
        assert fetch(server.port, "/hystrix.stream")[0] == 503

    def test_close_stops_the_server(self, harness: Harness) -> None:
        """After close() the server thread ends and the port refuses connections."""
        server = harness.start(delay_ms=50)
        client = harness.connect(server.port)
        client.next_batch()
        client.close()
        assert harness.free(server.app, 0)
        server.close()
        server.thread.join(5)
        assert not server.thread.is_alive()
        with pytest.raises(ConnectionRefusedError):
            fetch(server.port, "/hystrix.stream")

    def test_rejects_a_bad_cap_or_delay(self) -> None:
        """Bad options fail before a server starts."""
        with pytest.raises(ValueError, match="max_connections"):
            stream.start_http_server(0, max_connections=0)
        with pytest.raises(ValueError, match="delay"):
            stream.start_http_server(0, delay_ms=10)

    @pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
    def test_serves_on_ipv6_loopback(self, harness: Harness) -> None:
        """An IPv6 address works too, and the URL puts it in brackets."""
        server = harness.start("::1")
        assert server.url == f"http://[::1]:{server.port}/hystrix.stream"
        client = StreamClient(server.port, "/hystrix.stream", host="::1")
        try:
            assert client.response.status == 200
            assert client.next_messages()
        finally:
            client.close()

    def test_a_slow_client_never_blocks_command_execution(
        self, harness: Harness, parking_clock: ParkingClock
    ) -> None:
        """While the stream is stuck writing to a client that never reads, commands run on."""
        for number in range(40):  # enough commands that one batch overfills the socket buffers
            type(
                f"StreamBulk{number}",
                (Command,),
                {
                    "group_key": "StreamBulkGroup",
                    "properties": CommandProperties(execution_isolation_strategy=SEMAPHORE),
                    "run": lambda self: "value",
                },
            )
        probe = MetricsStream()
        assert len(next(probe)) > 64 * 1024
        probe.close()
        server = harness.start(delay_ms=50)
        server.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        harness.silent_client(server.port)
        assert server.app.wait_for_connections(1, 5)

        results: list[str] = []

        def execute_many() -> None:
            for number in range(200):
                command: Command[str] = Quick() if number % 2 else QuickPooled()
                results.append(command.execute())

        runner = threading.Thread(target=execute_many)
        runner.start()
        runner.join(10)
        assert not runner.is_alive()
        assert results == ["value"] * 200
        assert hystrixpy.command_metrics("Quick").cumulative_count(EventType.SUCCESS) == 100
        # The stream never finished its first batch: it has not waited for an interval once.
        assert [thread for thread in parking_clock.waiters if thread is not runner] == []
        assert server.app.connections == 1


class TestClientGone:
    def test_a_client_gone_during_a_long_interval_is_noticed_within_a_second(
        self, harness: Harness, parking_clock: ParkingClock
    ) -> None:
        """With ?delay=60000, a client that hangs up frees its place after one second, not 60."""
        server = harness.start()
        client = harness.connect(server.port, "/hystrix.stream?delay=60000")
        client.next_batch()
        assert parking_clock.wait_until_parked()

        client.close()
        parking_clock.advance(1.0)

        assert server.app.wait_for_connections(0, 5)

    def test_a_client_still_there_keeps_its_stream(
        self, harness: Harness, parking_clock: ParkingClock
    ) -> None:
        """Checking on a client that is still connected does not end its stream early."""
        server = harness.start()
        client = harness.connect(server.port, "/hystrix.stream?delay=2000")
        client.next_batch()
        assert parking_clock.wait_until_parked()
        parking_clock.advance(1.0)
        assert parking_clock.wait_until_parked()
        assert client.nothing_arrives()

        parking_clock.advance(1.0)

        assert parse_batch(client.next_batch())
        assert server.app.connections == 1


class TestSendTimeout:
    def test_a_client_that_takes_no_data_is_dropped_after_the_send_timeout(
        self, harness: Harness, parking_clock: ParkingClock
    ) -> None:
        """A stalled client loses its place once a write has waited send_timeout (real) seconds."""
        for index in range(100):  # batches big enough to fill the socket buffers at once
            type(
                f"Filler{index}",
                (Command,),
                {
                    "group_key": "Fillers",
                    "properties": CommandProperties(execution_isolation_strategy=SEMAPHORE),
                    "run": lambda self: "value",
                },
            )
        server = harness.start(delay_ms=50, send_timeout=0.2)
        server.server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        harness.silent_client(server.port)
        assert server.app.wait_for_connections(1, 5)

        assert server.app.wait_for_connections(0, 5)

    @pytest.mark.parametrize("timeout", [0, -1.0])
    def test_a_send_timeout_must_be_positive(self, timeout: float) -> None:
        """A send timeout of zero or less is refused, naming the value."""
        with pytest.raises(ValueError, match=rf"send_timeout.*{timeout}"):
            stream.start_http_server(0, send_timeout=timeout)


class TestServerClose:
    def test_close_ends_open_streams(self, parking_clock: ParkingClock) -> None:
        """Closing the server also ends the streams it is serving, freeing their places."""
        server = start_http_server(0)
        client = StreamClient(server.port, "/hystrix.stream")
        try:
            assert client.next_messages() is not None
            assert server.app.wait_for_connections(1, 5)
            server.close()
            assert client.batches.get(timeout=5) is None  # the response ended
            assert server.app.wait_for_connections(0, 5)
        finally:
            client.close()
