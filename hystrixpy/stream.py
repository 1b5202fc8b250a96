"""The Hystrix metrics stream: server-sent events the Hystrix Dashboard and Turbine read.

Every interval the stream sends one ``HystrixCommand`` message per command
key and one ``HystrixThreadPool`` message per pool, with Hystrix's field
names and types, followed by a keep-alive ``ping``. Commands whose classes
are defined are sent from the first interval, before any has run; standalone
breakers (:mod:`hystrixpy.breakers`) are sent as commands named after them.

Three ways to serve it:

* :func:`make_wsgi_app`: a WSGI application to mount in any WSGI server;
* :class:`MetricsStream`: an iterator of SSE chunks, for a framework's
  streaming response (Flask, Django);
* :func:`start_http_server`: a small HTTP server on a daemon thread serving
  ``/hystrix.stream``, for processes that are not web applications.

Only metrics are sent, never arguments or results of commands. The server
binds to loopback unless told otherwise.
"""

from __future__ import annotations

import io
import json
import select
import socket
import socketserver
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from hystrixpy import _log, breakers, clock, registry
from hystrixpy.breakers import Monitored
from hystrixpy.bulkhead import ThreadPoolBulkhead
from hystrixpy.circuit_breaker import CircuitBreaker
from hystrixpy.events import EventType

__all__ = [
    "CLIENT_GONE_KEY",
    "DEFAULT_DELAY_MS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_SEND_TIMEOUT_S",
    "HEADERS",
    "MAX_DELAY_MS",
    "MIN_DELAY_MS",
    "MetricsStream",
    "StreamApp",
    "StreamServer",
    "command_message",
    "frame",
    "make_wsgi_app",
    "messages",
    "pool_message",
    "start_http_server",
]

#: The default interval between batches of messages.
DEFAULT_DELAY_MS = 500
#: The shortest interval a client may ask for with ``?delay=``.
MIN_DELAY_MS = 50
#: The longest interval a client may ask for.
MAX_DELAY_MS = 60_000
#: Concurrent connections served at once by default; more get HTTP 503.
DEFAULT_MAX_CONNECTIONS = 5
#: How long (seconds) the built-in server waits on a client that takes no data before dropping it.
DEFAULT_SEND_TIMEOUT_S = 10.0
#: The WSGI environ key of a server's "has the client gone?" callable (see :class:`StreamApp`).
CLIENT_GONE_KEY = "hystrixpy.client_gone"
_GONE_CHECK_SECONDS = 1.0

_PERCENTS = [0, 25, 50, 75, 90, 95, 99, 99.5, 100]
_PERCENT_KEYS = ["0", "25", "50", "75", "90", "95", "99", "99.5", "100"]
_PING = b"ping: \n\n"
#: The response headers of a stream (server-sent events, never cached).
HEADERS = [
    ("Content-Type", "text/event-stream;charset=UTF-8"),
    ("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate"),
    ("Pragma", "no-cache"),
]

# The rolling counts of a HystrixCommand message, in Hystrix's order.
_ROLLING_COUNT_FIELDS = [
    ("rollingCountBadRequests", EventType.BAD_REQUEST),
    ("rollingCountCollapsedRequests", EventType.COLLAPSED),
    ("rollingCountEmit", EventType.EMIT),
    ("rollingCountExceptionsThrown", EventType.EXCEPTION_THROWN),
    ("rollingCountFailure", EventType.FAILURE),
    ("rollingCountFallbackEmit", EventType.FALLBACK_EMIT),
    ("rollingCountFallbackFailure", EventType.FALLBACK_FAILURE),
    ("rollingCountFallbackMissing", EventType.FALLBACK_MISSING),
    ("rollingCountFallbackRejection", EventType.FALLBACK_REJECTION),
    ("rollingCountFallbackSuccess", EventType.FALLBACK_SUCCESS),
    ("rollingCountResponsesFromCache", EventType.RESPONSE_FROM_CACHE),
    ("rollingCountSemaphoreRejected", EventType.SEMAPHORE_REJECTED),
    ("rollingCountShortCircuited", EventType.SHORT_CIRCUITED),
    ("rollingCountSuccess", EventType.SUCCESS),
    ("rollingCountThreadPoolRejected", EventType.THREAD_POOL_REJECTED),
    ("rollingCountTimeout", EventType.TIMEOUT),
    # hystrixpy's own, after Hystrix's: extra attempts of run() (a command's retry policy), and
    # executions its rate limiter refused.
    ("rollingCountRetries", EventType.RETRY),
    ("rollingCountRateLimited", EventType.RATE_LIMITED),
]


_ROLLING_COUNT_INDEXES = [event.index for _, event in _ROLLING_COUNT_FIELDS]


def _wall_ms() -> int:
    return int(clock.wall_time() * 1000)


def command_message(state: Monitored, current_time_ms: int | None = None) -> dict[str, Any]:
    """The ``HystrixCommand`` message of one command key, in Hystrix's field order."""
    fixed = _fixed_fields(state)
    return {**fixed.head, **_live_fields(state, current_time_ms), **fixed.tail}


# The fields of a command message that change from one interval to the next, in order:
# scalars, then the two latency series (each a mean and a dict of percentiles).
_LIVE_SCALARS = [
    "currentTime",
    "isCircuitBreakerOpen",
    "errorPercentage",
    "errorCount",
    "requestCount",
    *(field for field, _ in _ROLLING_COUNT_FIELDS),
    "currentConcurrentExecutionCount",
    "rollingMaxConcurrentExecutionCount",
]
_LATENCY_FIELDS = [("latencyExecute_mean", "latencyExecute"), ("latencyTotal_mean", "latencyTotal")]
_OPEN_POSITION = _LIVE_SCALARS.index("isCircuitBreakerOpen")


def _live_template() -> str:
    """The live fields as JSON with a ``%d`` (``%s`` for the one boolean) per value."""
    parts = [f'"{name}":%d' for name in _LIVE_SCALARS]
    parts[_OPEN_POSITION] = '"isCircuitBreakerOpen":%s'
    percentiles = ",".join(f'"{key}":%d' for key in _PERCENT_KEYS)
    for mean, series in _LATENCY_FIELDS:
        parts.append(f'"{mean}":%d')
        parts.append(f'"{series}":{{{percentiles}}}')
    return ",".join(parts)


_LIVE_TEMPLATE = _live_template()


def _live_values(state: Monitored, current_time_ms: int | None) -> list[Any]:
    """The live fields' values in :data:`_LIVE_TEMPLATE`'s order."""
    snapshot = state.metrics.snapshot(_PERCENTS)
    breaker = state.circuit_breaker
    health = snapshot.health
    counts = snapshot.rolling_counts
    return [
        _wall_ms() if current_time_ms is None else current_time_ms,
        isinstance(breaker, CircuitBreaker) and breaker.is_open_given(health),
        health.error_percentage,
        health.error_count,
        health.total_requests,
        *[counts[index] for index in _ROLLING_COUNT_INDEXES],
        snapshot.concurrent_executions,
        snapshot.rolling_max_concurrent_executions,
        snapshot.execution_mean,
        *snapshot.execution_percentiles,
        snapshot.total_mean,
        *snapshot.total_percentiles,
    ]


def _live_fields(state: Monitored, current_time_ms: int | None) -> dict[str, Any]:
    """The fields of a command message that change from one interval to the next."""
    values = _live_values(state, current_time_ms)
    scalars = len(_LIVE_SCALARS)
    fields = dict(zip(_LIVE_SCALARS, values[:scalars], strict=True))
    position = scalars
    width = len(_PERCENT_KEYS)
    for mean, series in _LATENCY_FIELDS:
        fields[mean] = values[position]
        percentiles = values[position + 1 : position + 1 + width]
        fields[series] = dict(zip(_PERCENT_KEYS, percentiles, strict=True))
        position += 1 + width
    return fields


@dataclass(frozen=True)
class _FixedFields:
    """The fields of a key's command message that only a configuration change alters."""

    config_version: int
    timeout_ms: int  # the timeout in force when they were made
    head: dict[str, Any]  # before the live fields
    tail: dict[str, Any]  # after them
    template: str  # the whole ``data:`` event, with the live fields' %-placeholders


# Made again only after a configuration change (the key's state knows its version).
_FIXED: weakref.WeakKeyDictionary[Monitored, _FixedFields] = weakref.WeakKeyDictionary()


def _fixed_fields(state: Monitored) -> _FixedFields:
    fixed = _FIXED.get(state)
    timeout_ms = state.timeout_ms  # the timeout in force (an adaptive one moves)
    if (
        fixed is not None
        and fixed.config_version == state.config_version
        and fixed.timeout_ms == timeout_ms
    ):
        return fixed
    properties = state.properties
    head = {"type": "HystrixCommand", "name": state.command_key, "group": state.group_key}
    tail = {
        "propertyValue_circuitBreakerRequestVolumeThreshold": (
            properties.circuit_breaker_request_volume_threshold
        ),
        "propertyValue_circuitBreakerSleepWindowInMilliseconds": (
            properties.circuit_breaker_sleep_window_ms
        ),
        "propertyValue_circuitBreakerErrorThresholdPercentage": (
            properties.circuit_breaker_error_threshold_percentage
        ),
        "propertyValue_circuitBreakerForceOpen": properties.circuit_breaker_force_open,
        "propertyValue_circuitBreakerForceClosed": properties.circuit_breaker_force_closed,
        "propertyValue_circuitBreakerEnabled": properties.circuit_breaker_enabled,
        "propertyValue_executionIsolationStrategy": properties.execution_isolation_strategy.name,
        "propertyValue_executionIsolationThreadTimeoutInMilliseconds": timeout_ms,
        "propertyValue_executionTimeoutInMilliseconds": timeout_ms,
        # Python cannot interrupt a thread: a timed-out run() is abandoned, not interrupted.
        "propertyValue_executionIsolationThreadInterruptOnTimeout": False,
        "propertyValue_executionIsolationThreadPoolKeyOverride": (
            properties.thread_pool_key_override
        ),
        "propertyValue_executionIsolationSemaphoreMaxConcurrentRequests": (
            properties.execution_isolation_semaphore_max_concurrent_requests
        ),
        "propertyValue_fallbackIsolationSemaphoreMaxConcurrentRequests": (
            properties.fallback_isolation_semaphore_max_concurrent_requests
        ),
        "propertyValue_metricsRollingStatisticalWindowInMilliseconds": (
            properties.metrics_rolling_stats_time_ms
        ),
        "propertyValue_requestCacheEnabled": properties.request_cache_enabled,
        "propertyValue_requestLogEnabled": properties.request_log_enabled,
        "reportingHosts": 1,
        "threadPool": state.thread_pool_key,
    }
    head_json = _ENCODER.encode(head)[:-1].replace("%", "%%")  # a key may hold a "%"
    tail_json = _ENCODER.encode(tail)[1:].replace("%", "%%")
    template = f"data: {head_json},{_LIVE_TEMPLATE},{tail_json}\n\n"
    fixed = _FixedFields(state.config_version, timeout_ms, head, tail, template)
    _FIXED[state] = fixed
    return fixed


def _command_frame(state: Monitored, current_time_ms: int) -> bytes:
    """:func:`command_message` as a ready ``data:`` event, filled into its key's template."""
    template = _fixed_fields(state).template
    values = _live_values(state, current_time_ms)
    values[_OPEN_POSITION] = "true" if values[_OPEN_POSITION] else "false"
    return (template % tuple(values)).encode()


def pool_message(pool: ThreadPoolBulkhead, current_time_ms: int | None = None) -> dict[str, Any]:
    """The ``HystrixThreadPool`` message of one pool, in Hystrix's field order."""
    metrics = pool.metrics
    properties = pool.properties
    return {
        "type": "HystrixThreadPool",
        "name": pool.pool_key,
        "currentTime": _wall_ms() if current_time_ms is None else current_time_ms,
        "currentActiveCount": metrics.current_active_count,
        "currentCompletedTaskCount": metrics.current_completed_task_count,
        "currentCorePoolSize": properties.core_size,
        "currentLargestPoolSize": metrics.current_largest_pool_size,
        "currentMaximumPoolSize": properties.effective_maximum_size,
        "currentPoolSize": metrics.current_pool_size,
        "currentQueueSize": metrics.current_queue_size,
        "currentTaskCount": metrics.current_task_count,
        "rollingCountThreadsExecuted": metrics.rolling_count_threads_executed,
        "rollingMaxActiveThreads": metrics.rolling_max_active_threads,
        "rollingCountCommandRejections": metrics.rolling_count_threads_rejected,
        "propertyValue_queueSizeRejectionThreshold": properties.queue_size_rejection_threshold,
        "propertyValue_metricsRollingStatisticalWindowInMilliseconds": (
            properties.metrics_rolling_stats_time_ms
        ),
        "reportingHosts": 1,
    }


def messages() -> list[dict[str, Any]]:
    """One message per known command key, standalone breaker and pool, as of now."""
    now_ms = _wall_ms()
    states = _known_states()
    found = [command_message(state, now_ms) for state in states]
    found.extend(pool_message(pool, now_ms) for pool in registry.thread_pools())
    return found


def frame() -> bytes:
    """The ``data:`` events of :func:`messages`, encoded: one interval's batch, less its ping."""
    now_ms = _wall_ms()
    chunks = [_command_frame(state, now_ms) for state in _known_states()]
    chunks.extend(_encode(pool_message(pool, now_ms)) for pool in registry.thread_pools())
    return b"".join(chunks)


def _known_states() -> list[Monitored]:
    """Every command key in use or declared, then every standalone breaker (as a command)."""
    states = registry.declared_states()
    for state in states:
        if state.properties.execution_isolation_strategy.name == "THREAD":
            state.pool(state.thread_pool_key)  # so a pool shows before its first task
    return [*states, *breakers.monitored()]


_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def _encode(message: dict[str, Any]) -> bytes:
    return b"data: " + _ENCODER.encode(message).encode() + b"\n\n"


class MetricsStream:
    """An iterator of server-sent-event chunks: every interval, all messages and a ping.

    The first chunk is ready at once; each later one after ``delay_ms`` on
    hystrixpy's clock. :meth:`close` (from any thread) ends the iteration.
    ``client_gone``, when given, is asked at least once a second while
    waiting: once it answers true the iteration ends, without waiting for the
    interval to pass (the built-in server gives one that looks at the socket).
    """

    def __init__(
        self,
        delay_ms: int = DEFAULT_DELAY_MS,
        client_gone: Callable[[], bool] | None = None,
    ) -> None:
        _check_delay(delay_ms)
        self.delay_ms = delay_ms
        self._client_gone = client_gone
        self._guard = threading.Lock()
        self._stopped = False
        # Held until close() releases it, waking a next() that waits for the interval.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._first = True

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._stopped:
            raise StopIteration
        if not self._first and self._wait_for_interval():
            raise StopIteration  # close() woke us, or the client went away
        self._first = False
        return frame() + _PING

    def _wait_for_interval(self) -> bool:
        """Wait out the interval; ``True`` if the stream should end instead."""
        interval = self.delay_ms / 1000.0
        gone = self._client_gone
        if gone is None:
            return clock.wait(self._wake, interval)
        deadline = clock.monotonic() + interval
        while True:
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                return False
            if clock.wait(self._wake, min(remaining, _GONE_CHECK_SECONDS)) or gone():
                return True

    def close(self) -> None:
        """End the stream; a waiting ``next()`` returns at once. Safe from any thread, twice."""
        with self._guard:
            if self._stopped:
                return
            self._stopped = True
            self._wake.release()


def _check_delay(delay_ms: int) -> None:
    if not MIN_DELAY_MS <= delay_ms <= MAX_DELAY_MS:
        raise ValueError(
            f"delay must be between {MIN_DELAY_MS} and {MAX_DELAY_MS} ms, got {delay_ms!r}"
        )


StartResponse = Callable[..., Any]


class _Response:
    """The WSGI body of one connection: gives the connection's place back when closed."""

    def __init__(self, stream: MetricsStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release = release
        self._released = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._stream)

    def close(self) -> None:
        self._stream.close()
        if not self._released:
            self._released = True
            self._release()


class StreamApp:
    """A WSGI application serving the metrics stream, with a cap on connections.

    ``?delay=<ms>`` asks for another interval (``MIN_DELAY_MS`` to
    ``MAX_DELAY_MS``; anything else is answered with HTTP 400). Beyond
    ``max_connections`` open streams, a request gets HTTP 503. A client that
    goes away is noticed at the next write, and its place is freed; sooner
    (within a second) where the server puts a ``CLIENT_GONE_KEY`` callable in
    the WSGI environ, as :func:`start_http_server`'s does.
    """

    def __init__(
        self,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        delay_ms: int = DEFAULT_DELAY_MS,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections!r}")
        _check_delay(delay_ms)
        self.max_connections = max_connections
        self.delay_ms = delay_ms
        self._connections = 0
        self._changed = threading.Condition()
        self._open: set[MetricsStream] = set()

    @property
    def connections(self) -> int:
        """Streams being served now."""
        return self._connections

    def wait_for_connections(self, count: int, timeout: float) -> bool:
        """Block until exactly ``count`` streams are open (or ``timeout`` real seconds pass)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._connections == count, timeout)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Serve one request: the stream, or 400 / 503 with a short text body."""
        delay = self._requested_delay(environ.get("QUERY_STRING", ""))
        if delay is None:
            return _plain(
                start_response,
                "400 Bad Request",
                f"delay must be an integer from {MIN_DELAY_MS} to {MAX_DELAY_MS} (ms)\n",
            )
        with self._changed:
            if self._connections >= self.max_connections:
                full = True
            else:
                full = False
                self._connections += 1
                self._changed.notify_all()
        if full:
            _log.info("stream_connection_refused", max_connections=self.max_connections)
            return _plain(
                start_response,
                "503 Service Unavailable",
                f"MaxConcurrentConnections reached: {self.max_connections}\n",
            )
        start_response("200 OK", list(HEADERS))
        stream = MetricsStream(delay, environ.get(CLIENT_GONE_KEY))
        with self._changed:
            self._open.add(stream)
        return _Response(stream, lambda: self._release(stream))

    def close_all(self) -> None:
        """End every open stream (each connection closes after its current write)."""
        with self._changed:
            streams = list(self._open)
        for stream in streams:
            stream.close()

    def _release(self, stream: MetricsStream) -> None:
        with self._changed:
            self._open.discard(stream)
            self._connections -= 1
            self._changed.notify_all()

    def _requested_delay(self, query: str) -> int | None:
        values = parse_qs(query).get("delay")
        if not values:
            return self.delay_ms
        try:
            delay = int(values[-1])
        except ValueError:
            return None
        return delay if MIN_DELAY_MS <= delay <= MAX_DELAY_MS else None


def _plain(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(
        status,
        [("Content-Type", "text/plain;charset=UTF-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def make_wsgi_app(
    *, max_connections: int = DEFAULT_MAX_CONNECTIONS, delay_ms: int = DEFAULT_DELAY_MS
) -> StreamApp:
    """A WSGI application serving the metrics stream at whatever path it is mounted on."""
    return StreamApp(max_connections=max_connections, delay_ms=delay_ms)


class _QuietHandler(WSGIRequestHandler):
    """Sends request lines to hystrixpy's DEBUG log instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("stream_request", line=format % args)

    def get_environ(self) -> dict[str, Any]:
        """The WSGI environ, with a way for the stream to see that the client left."""
        environ: dict[str, Any] = super().get_environ()
        environ[CLIENT_GONE_KEY] = self._client_gone
        return environ

    def _client_gone(self) -> bool:
        """Whether the client closed its end (the socket reads as ended) or the socket failed."""
        connection = self.connection
        try:
            readable, _, _ = select.select([connection], [], [], 0)
            return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def get_stderr(self) -> io.StringIO:
        """Where wsgiref reports a failed response: a dropped client is routine, not news."""
        return _DiscardedText()


class _DiscardedText(io.StringIO):
    """A text sink that keeps nothing."""

    def write(self, text: str) -> int:
        return len(text)


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingWSGIServerV6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


@dataclass
class StreamServer:
    """A running stream server (see :func:`start_http_server`)."""

    app: StreamApp
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port it listens on (useful when started on port 0)."""
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """The stream's URL."""
        host = str(self.server.server_address[0])
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/hystrix.stream"

    def close(self) -> None:
        """Stop accepting connections, end the open streams and close the listening socket."""
        self.server.shutdown()
        self.app.close_all()
        self.server.server_close()


def start_http_server(
    port: int,
    addr: str = "127.0.0.1",
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    delay_ms: int = DEFAULT_DELAY_MS,
    send_timeout: float = DEFAULT_SEND_TIMEOUT_S,
) -> StreamServer:
    """Serve ``/hystrix.stream`` on ``addr:port`` from a daemon thread (port 0: any free port).

    A client that takes no data for ``send_timeout`` seconds (gone without a
    word, or stalled) is disconnected and its place freed.
    """
    if not send_timeout > 0:
        raise ValueError(f"send_timeout must be > 0 seconds, got {send_timeout!r}")
    app = StreamApp(max_connections=max_connections, delay_ms=delay_ms)
    handler = type("_StreamHandler", (_QuietHandler,), {"timeout": send_timeout})

    def routed(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") != "/hystrix.stream":
            return _plain(start_response, "404 Not Found", "the stream is at /hystrix.stream\n")
        return app(environ, start_response)

    family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0][0]
    server_class = _ThreadingWSGIServer
    if family == socket.AF_INET6:
        server_class = _ThreadingWSGIServerV6
    server = server_class((addr, port), handler)
    server.set_app(routed)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name="hystrix-stream-server",
        daemon=True,
    )
    thread.start()
    return StreamServer(app, server, thread)
