"""The worker's HTTP endpoints: ``/metrics`` (Prometheus), ``/healthz`` (liveness) and
``/readyz`` (readiness), on one port from settings (``METRICS_HOST``/``METRICS_PORT``).

- **Live** while the event loop runs: a faust timer calls :meth:`Health.beat` every half
  second; no beat for ``stall_after`` seconds means the worker is wedged (restart it).
- **Ready** once this worker is in its group with its tables recovered from the
  changelog, and the broker answered recently: only then does it process input with the
  state it should have. Not ready while rebalancing or recovering, or when the broker has
  been unreachable (``medsafety_broker_connected`` shows the outage too).

The bodies are small JSON documents of booleans and ages, never patient data. A stdlib
threading server, so the endpoints answer even while the event loop is busy.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class Health:
    """Liveness and readiness, set by the worker, read by the HTTP handler (thread-safe
    enough: single attribute writes of immutable values)."""

    def __init__(self, stall_after: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.stall_after = stall_after
        self._last_beat = clock()
        self.recovered = False
        self.rebalancing = True
        self.broker_connected = False

    def beat(self) -> None:
        self._last_beat = self._clock()

    def live(self) -> bool:
        return self._clock() - self._last_beat < self.stall_after

    def ready(self) -> bool:
        return self.live() and self.recovered and not self.rebalancing and self.broker_connected

    def report(self) -> dict[str, object]:
        return {"live": self.live(), "ready": self.ready(), "recovered": self.recovered,
                "rebalancing": self.rebalancing, "broker_connected": self.broker_connected,
                "seconds_since_heartbeat": round(self._clock() - self._last_beat, 3)}


def serve(registry: CollectorRegistry, health: Health, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Start the endpoints in a daemon thread; ``server.server_port`` is the bound port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path, _, query = self.path.partition("?")
            if path == "/metrics":
                # ``?name[]=...`` restricts the exposition to those series, as prometheus_client's
                # own handler does: a poller that wants three numbers (the benchmark) need not
                # make the worker render every histogram, about 1.6 ms of its CPU per scrape.
                names = parse_qs(query).get("name[]")
                exposed = registry.restricted_registry(names) if names else registry
                self._send(200, generate_latest(exposed), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                ok = health.live() if path == "/healthz" else health.ready()
                self._send(200 if ok else 503, json.dumps(health.report()).encode(), "application/json")
            else:
                self._send(404, b'{"error": "not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - no access log
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="medsafety-http", daemon=True).start()
    return server
