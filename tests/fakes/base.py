"""Shared plumbing for the fake platform servers.

Each fake is a real HTTP server on 127.0.0.1 (ephemeral port) served from a background thread,
started and stopped by a context manager. A platform module declares its routes, its auth check
and its error shapes; this module does the rest:

- parsing (JSON, form, multipart) and recording every request (``fake.requests``);
- fault injection (``fake.inject(...)``, ``fake.chaos(...)``), applied before the platform logic
  runs, or after it with ``after=True`` (the request takes effect but its response is lost);
- rate limiting, counters (per endpoint, largest batch, most concurrent requests) and the check
  that the client kept to the platform's limits (``fake.assert_limits()``);
- a clock the tests can move (``fake.advance(seconds)``) for session timeouts and key expiry.

Platform handlers run one at a time under ``fake.lock``, so state stays consistent; latency,
injected delays and the in-flight count are outside the lock, so concurrency is real.
"""

from __future__ import annotations

import json
import random
import re
import select
import socket
import struct
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

HEX64 = re.compile(r"[0-9a-f]{64}")
"""A SHA-256 digest as the platforms want it: 64 lowercase hex digits."""
ANY_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
"""Looks like a digest (maybe in the wrong case): not a PII leak, though still rejected."""

PlatformError = int | str | tuple[int, int]
"""Meta: code or (code, subcode); Google: status name; TikTok: code; Resend: error name."""


@dataclass
class Recorded:
    """One request as the fake received it, and what it answered (status 0: connection dropped)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # name -> (filename, data)
    endpoint: str = ""  # the route's name, "" when no route matched
    params: dict[str, str] = field(default_factory=dict)  # the route's path parameters
    malformed: str | None = None  # why the body could not be parsed
    status: int = 0
    response: Any = None
    fault: str | None = None  # the injected fault that hit this request, if any
    at: float = 0.0  # when it arrived, on the fake's clock (``now()``)


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class Rejected(Exception):
    """Raised by a platform handler to answer with an error reply."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status, reply.body)
        self.reply = reply


@dataclass
class Fault:
    """An injected fault; see ``FakeServer.inject``. ``hits`` counts the requests it hit."""

    status: int | None = None
    platform_error: PlatformError | None = None
    delay: float = 0.0
    reset: bool = False
    after: bool = False
    retry_after: float | None = None
    message: str | None = None
    headers: dict[str, str] | None = None
    times: int | None = 1
    path: str | None = None
    endpoint: str | None = None
    contains: str | None = None
    match: Callable[[Recorded], bool] | None = None
    hits: int = 0

    @property
    def breaks(self) -> bool:
        """Whether the fault replaces the normal answer (a delay alone does not)."""
        return self.reset or self.status is not None or self.platform_error is not None

    def matches(self, req: Recorded) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.path is not None and not re.search(self.path, req.path):
            return False
        if self.endpoint is not None and self.endpoint != req.endpoint:
            return False
        if self.contains is not None:
            query = unquote_plus("&".join(f"{k}={v}" for k, v in req.query.items()))
            if self.contains.encode() not in req.body and self.contains not in query:
                return False
        return self.match is None or self.match(req)

    def describe(self) -> str:
        parts = [
            f"status={self.status}" if self.status is not None else "",
            f"platform_error={self.platform_error!r}" if self.platform_error is not None else "",
            f"delay={self.delay}" if self.delay else "",
            "reset" if self.reset else "",
            "after" if self.after else "",
        ]
        return " ".join(p for p in parts if p)


def _set_header(reply: Reply, name: str, value: str) -> None:
    """Set a header, replacing any of the same name in another case (never send two)."""
    for existing in [k for k in reply.headers if k.lower() == name.lower()]:
        del reply.headers[existing]
    reply.headers[name] = value


def retry_after_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def bearer(req: Recorded) -> str | None:
    auth = req.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


class _Handler(BaseHTTPRequestHandler):
    server: _Server  # HTTP/1.0: one request per connection, so stopping never waits on keep-alive

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the fake records requests itself

    def _any(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client hung up (its own timeout): nothing for the fake to report


class FakeServer:
    """A platform fake: subclasses set ``routes`` and implement the hooks at the end."""

    routes: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    """(method, path regex, name): requests to endpoint NAME go to ``on_NAME(req, **groups)``."""
    transient_errors: ClassVar[tuple[PlatformError, ...]] = ()
    """Platform errors that ``chaos`` mixes in (throttling and transient ones)."""

    def __init__(
        self,
        *,
        rate_limit: tuple[int, float] | None = None,
        max_concurrent: int | None = None,
        latency: float = 0.0,
    ) -> None:
        self.lock = threading.RLock()
        self.rate_limit = rate_limit  # (requests, per seconds)
        self.concurrency_limit = max_concurrent
        self.latency = latency
        self._routes = [(m, re.compile(p), name) for m, p, name in self.routes]
        self._requests: list[Recorded] = []
        self._faults: list[Fault] = []
        self._chaos: tuple[float, random.Random, tuple[str, ...], float] | None = None
        self._window: deque[float] = deque()
        self._offset = 0.0
        self._in_flight = 0
        self._max_concurrent = 0
        self._counts: Counter[str] = Counter()
        self._max_batch: dict[str, int] = {}
        self._violations: list[tuple[str, str]] = []
        self._leaks: list[tuple[str, str]] = []
        self._crashes: list[str] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Self:
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._stopping.set()  # cut injected delays short
        self._server.shutdown()
        self._server.server_close()  # joins the request threads
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.stop()
        if exc_type is None and self._crashes:
            raise AssertionError(f"{type(self).__name__} crashed:\n{self._crashes[0]}")

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- faults ------------------------------------------------------------------------------------
    def inject(
        self,
        *,
        status: int | None = None,
        platform_error: PlatformError | None = None,
        delay: float = 0.0,
        reset: bool = False,
        after: bool = False,
        retry_after: float | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        times: int | None = 1,
        path: str | None = None,
        endpoint: str | None = None,
        contains: str | None = None,
        match: Callable[[Recorded], bool] | None = None,
    ) -> Fault:
        """Make the next ``times`` matching requests (None: all of them) fail or slow down.

        status: answer this HTTP status with the platform's error body.
        platform_error: answer the platform's own error (see each fake for the values).
        delay: wait this long first (alone, the request then succeeds).
        reset: drop the connection without an answer.
        after: let the request take effect, then fail or drop it (the response is lost).
        retry_after: seconds for Retry-After (Meta: minutes to regain access).
        message: the error message of a ``status`` fault, in the platform's error shape (to play
        a platform or a proxy echoing what it received, a credential say).
        headers: response headers to add to the fault's answer (replacing the platform's own:
        ``{"Retry-After": "soon"}`` plays a malformed one).
        path (regex searched in the path), endpoint (route name), contains (substring of the
        body or the decoded query), match (predicate): all given must hold.
        Faults are tried in the order injected. Returns the fault; its ``hits`` counts uses.
        """
        fault = Fault(
            status=status,
            platform_error=platform_error,
            delay=delay,
            reset=reset,
            after=after,
            retry_after=retry_after,
            message=message,
            headers=headers,
            times=times,
            path=path,
            endpoint=endpoint,
            contains=contains,
            match=match,
        )
        if platform_error is not None:  # an unknown error fails here, not inside the server
            self.platform_reply(platform_error, retry_after, Recorded("POST", "/", {}, {}, b""))
        with self.lock:
            self._faults.append(fault)
        return fault

    def chaos(
        self,
        rate: float,
        seed: int | None = None,
        *,
        kinds: tuple[str, ...] = ("status", "platform", "delay", "reset"),
        max_delay: float = 0.05,
    ) -> None:
        """Hit a random ``rate`` of requests with a random transient fault; ``rate=0`` stops.

        kinds: "status" (500/502/503), "platform" (the platform's throttling errors, asking for no
        wait), "delay" (up to ``max_delay``), "reset" (dropped before processing) and, on request,
        "lost" (processed, then dropped: tests idempotency). Injected faults take precedence.
        """
        with self.lock:
            self._chaos = (rate, random.Random(seed), kinds, max_delay) if rate > 0 else None

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()
            self._chaos = None

    def _pick_fault(self, req: Recorded) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.matches(req):
                    fault.hits += 1
                    req.fault = fault.describe()
                    return fault
            if self._chaos is None:
                return None
            rate, rng, kinds, max_delay = self._chaos
            if rng.random() >= rate:
                return None
            kind = rng.choice(kinds)
            if kind == "status":
                fault = Fault(status=rng.choice((500, 502, 503)))
            elif kind == "platform" and self.transient_errors:
                fault = Fault(platform_error=rng.choice(self.transient_errors), retry_after=0)
            elif kind == "platform":
                fault = Fault(status=429, retry_after=0)
            elif kind == "delay":
                fault = Fault(delay=rng.uniform(0, max_delay))
            else:
                fault = Fault(reset=True, after=kind == "lost")
            req.fault = "chaos " + fault.describe()
            return fault

    def _fault_reply(self, fault: Fault, req: Recorded) -> Reply:
        if fault.platform_error is not None:
            reply = self.platform_reply(fault.platform_error, fault.retry_after, req)
        else:
            reply = self.error_reply(
                fault.status or 500, fault.message or f"injected HTTP {fault.status}"
            )
            if fault.retry_after is not None:
                _set_header(reply, "Retry-After", retry_after_header(fault.retry_after))
        for name, value in (fault.headers or {}).items():
            _set_header(reply, name, value)
        return reply

    # -- clock, counters, limits ---------------------------------------------------------------
    def now(self) -> float:
        """Monotonic seconds, moved on by ``advance``."""
        return time.monotonic() + self._offset

    def wall(self) -> float:
        """Unix seconds, moved on by ``advance``."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (session timeouts, key expiry, rate windows)."""
        with self.lock:
            self._offset += seconds

    @property
    def requests(self) -> list[Recorded]:
        with self.lock:
            return list(self._requests)

    def calls(self, endpoint: str) -> list[Recorded]:
        """The requests routed to ``endpoint``, in arrival order."""
        return [r for r in self.requests if r.endpoint == endpoint]

    @property
    def counts(self) -> Counter[str]:
        """Requests per endpoint (unrouted ones under "")."""
        with self.lock:
            return Counter(self._counts)

    @property
    def max_batch(self) -> dict[str, int]:
        """The largest batch seen per endpoint (see each fake for what is counted)."""
        with self.lock:
            return dict(self._max_batch)

    @property
    def max_concurrent(self) -> int:
        """The most requests in flight at once."""
        with self.lock:
            return self._max_concurrent

    @property
    def violations(self) -> list[str]:
        with self.lock:
            return [f"{kind}: {message}" for kind, message in self._violations]

    @property
    def pii_leaks(self) -> list[tuple[str, str]]:
        """(endpoint, value) for every raw, unhashed identifier received."""
        with self.lock:
            return list(self._leaks)

    def assert_limits(self, *, allow_throttling: bool = False) -> None:
        """Fail unless the client kept to the platform's limits: batch sizes, concurrency and
        (unless ``allow_throttling``) the rate limit. Injected faults do not count."""
        with self.lock:
            found = [
                f"{kind}: {message}"
                for kind, message in self._violations
                if not (allow_throttling and kind == "rate")
            ]
        if found:
            raise AssertionError(
                f"{type(self).__name__}: platform limits exceeded:\n  " + "\n  ".join(found)
            )

    def saw_batch(self, name: str, size: int, limit: int | None) -> None:
        """Count a batch for ``max_batch``; a batch over ``limit`` is a violation."""
        with self.lock:
            self._max_batch[name] = max(self._max_batch.get(name, 0), size)
            if limit is not None and size > limit:
                self._violations.append(("batch", f"{name}: {size} > {limit}"))

    def leak(self, endpoint: str, value: str) -> None:
        with self.lock:
            self._leaks.append((endpoint, value))

    def _over_rate(self) -> bool:
        if self.rate_limit is None:
            return False
        limit, per = self.rate_limit
        now = self.now()
        while self._window and self._window[0] <= now - per:
            self._window.popleft()
        if len(self._window) >= limit:
            self._violations.append(("rate", f"more than {limit} requests in {per:g}s"))
            return True
        self._window.append(now)
        return False

    # -- serving -----------------------------------------------------------------------------------
    def _serve(self, handler: _Handler) -> None:
        req = self._parse(handler)
        counted = True  # the request counts as in flight
        with self.lock:
            req.at = self.now()
            self._requests.append(req)
            self._counts[req.endpoint] += 1
            self._in_flight += 1
            self._max_concurrent = max(self._max_concurrent, self._in_flight)
            limit = self.concurrency_limit
            if limit is not None and self._in_flight > limit:
                self._violations.append(("concurrency", f"{self._in_flight} > {limit} in flight"))
        try:
            fault = self._pick_fault(req)
            wait = self.latency + (fault.delay if fault else 0.0)
            if wait and self._delay(handler, wait):
                # The client gave up (its timeout) and no longer waits: not in flight any more,
                # though the request still takes effect, as on a real server.
                counted = False
                with self.lock:
                    self._in_flight -= 1
            reply: Reply | None
            if fault is not None and fault.breaks and not fault.after:
                reply = None if fault.reset else self._fault_reply(fault, req)
            else:
                reply = self._process(req)
                if fault is not None and fault.breaks:
                    reply = None if fault.reset else self._fault_reply(fault, req)
            if reply is None:
                # RST instead of an answer: the client sees a dropped connection
                linger = struct.pack("ii", 1, 0)
                handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                handler.close_connection = True
                return
            req.status, req.response = reply.status, reply.body
            data = b"" if reply.body is None else json.dumps(reply.body).encode()
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            # Counted out before the answer goes: once the client has it, it may send the next
            # request before this thread runs again, and that one must not count as a third.
            if counted:
                counted = False
                with self.lock:
                    self._in_flight -= 1
            handler.end_headers()
            handler.wfile.write(data)
        finally:
            if counted:
                with self.lock:
                    self._in_flight -= 1

    def _delay(self, handler: _Handler, seconds: float) -> bool:
        """Wait ``seconds`` (cut short when the fake stops); True if the client hung up
        meanwhile."""
        deadline = time.monotonic() + seconds
        hung_up = False
        while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            if hung_up:
                self._stopping.wait(left)
                break
            readable, _, _ = select.select([handler.connection], [], [], min(left, 0.02))
            if readable:
                try:
                    hung_up = handler.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    hung_up = True
                if not hung_up:  # more bytes than the request: not ours to judge
                    self._stopping.wait(left)
                    break
        return hung_up

    def _process(self, req: Recorded) -> Reply:
        with self.lock:
            try:
                if req.malformed:
                    return self.error_reply(400, req.malformed)
                if not req.endpoint:
                    return self.error_reply(404, f"Unknown path: {req.method} {req.path}")
                self.authenticate(req)
                if self._over_rate():
                    return self.throttle_reply()
                out = getattr(self, f"on_{req.endpoint}")(req, **req.params)
            except Rejected as rejected:
                return rejected.reply
            except Exception:
                self._crashes.append(traceback.format_exc())
                return self.error_reply(500, "the fake crashed (see the test's failure)")
            return out if isinstance(out, Reply) else Reply(200, out)

    def _parse(self, handler: _Handler) -> Recorded:
        url = urlsplit(handler.path)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while size := int(handler.rfile.readline().split(b";")[0], 16):
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
            while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            body = b"".join(chunks)
        else:
            body = handler.rfile.read(int(headers.get("content-length") or 0))
        req = Recorded(
            method=handler.command,
            path=unquote(url.path),
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers=headers,
            body=body,
        )
        for method, pattern, name in self._routes:
            found = pattern.fullmatch(req.path)
            if found and method == req.method:
                req.endpoint, req.params = name, found.groupdict()
                break
        ctype = headers.get("content-type", "").lower()
        try:
            if "json" in ctype and body:
                req.json = json.loads(body)
            elif "x-www-form-urlencoded" in ctype:
                req.form = dict(parse_qsl(body.decode(), keep_blank_values=True))
            elif "multipart/form-data" in ctype:
                req.form, req.files = _multipart(body, headers["content-type"])
        except ValueError as error:
            req.malformed = f"Malformed request body: {error}"
        return req

    # -- platform hooks ----------------------------------------------------------------------------
    def authenticate(self, req: Recorded) -> None:
        """Raise ``Rejected`` with the platform's auth error unless the request is authorised."""

    def error_reply(self, status: int, message: str) -> Reply:
        """A generic error with this HTTP status, in the platform's error shape."""
        return Reply(status, {"error": message})

    def platform_reply(
        self, error: PlatformError, retry_after: float | None, req: Recorded
    ) -> Reply:
        """The platform's own error ``error`` (an injected ``platform_error``)."""
        raise NotImplementedError(f"{type(self).__name__} has no platform errors")

    def throttle_reply(self) -> Reply:
        """The answer when the fake's own rate limit is exceeded."""
        return self.error_reply(429, "rate limit exceeded")


def _multipart(
    body: bytes, content_type: str
) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise ValueError("not a multipart body")
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            raise ValueError(f"multipart part {name!r} has no content")
        filename = part.get_filename()
        if filename is not None:
            files[str(name)] = (filename, data)
        else:
            fields[str(name)] = data.decode()
    return fields, files
