"""The example HTTP service the example workflows call (loopback only, standard library only).

* ``POST /enrich``  ``{"records": [...]}`` → the records with a ``score`` and a ``tier`` added;
* ``POST /notify``  any JSON → ``204`` (the daily report's "web hook"); the body is printed;
* ``GET /health``   → ``{"status": "ok"}``.

Run it alone with ``python -m examples.service --port 8765``; ``conveyor dev`` starts it for you.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

DEFAULT_PORT = 8765


def enrich(records: list[Any]) -> list[Any]:
    enriched = []
    for record in records:
        if isinstance(record, dict):
            qty = record.get("qty", 0)
            score = int(qty) if isinstance(qty, int | float) else 0
            tier = "gold" if score >= 200 else "silver" if score >= 100 else "bronze"
            enriched.append({**record, "score": score, "tier": tier})
        else:
            enriched.append(record)
    return enriched


class Handler(BaseHTTPRequestHandler):
    server_version = "conveyor-example"

    def _reply(self, status: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(200, {"status": "ok"})
        else:
            self._reply(404, {"detail": f"no route {self.path}"})

    def do_POST(self) -> None:
        try:
            body = self._body()
        except ValueError:
            self._reply(400, {"detail": "the body is not JSON"})
            return
        if self.path == "/enrich":
            records = body.get("records") if isinstance(body, dict) else None
            if not isinstance(records, list):
                self._reply(422, {"detail": 'expected {"records": [...]}'})
                return
            self._reply(200, {"records": enrich(records), "count": len(records)})
        elif self.path == "/notify":
            print(json.dumps({"event": "notified", "body": body}), file=sys.stderr, flush=True)
            self._reply(204)
        else:
            self._reply(404, {"detail": f"no route {self.path}"})

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: conveyor dev shows the workflow events instead


def serve(port: int, host: str = "127.0.0.1") -> None:
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True

    def stop(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        json.dumps({"event": "service_started", "url": f"http://{host}:{server.server_port}"}),
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever(poll_interval=0.2)
    server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    serve(args.port, args.host)


if __name__ == "__main__":
    main()
