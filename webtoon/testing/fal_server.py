"""The fal fake (fal_fake.FalFake) as a loopback HTTP server, for runs with several processes.

Web and worker processes started with WEBTOON_FAL_FAKE_URL forward every request meant for
fal's hosts here (webtoon.testing.forwarding), naming the original origin in a header; this
server answers it from one shared FalFake, so a request submitted by a worker that is then
killed is still there when another worker polls it. Nothing here reaches the internet.

    python -m webtoon.testing.fal_server --port 8765 --error-rate 0.05 --timeout-rate 0.01

GET /_fake/submissions lists every request fal accepted (for the soak's invariants).
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from .fal_fake import Chaos, FalFake

ORIGIN_HEADER = "x-fal-fake-origin"
ERROR_HEADER = "x-fal-fake-error"
# Headers that belong to one hop of the forwarding, never copied across it.
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", ORIGIN_HEADER}


def make_handler(fake: FalFake):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: the soak prints its own report
            pass

        def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in HOP_HEADERS and name.lower() != "content-encoding":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _control(self) -> None:
            if self.path.startswith("/_fake/submissions"):
                with lock:
                    rows = [
                        {
                            "request_id": r.request_id,
                            "endpoint": r.endpoint,
                            "arguments": r.arguments,
                            "started": r.started_at is not None,
                            "cancelled": r.cancelled,
                            "error": r.error,
                            "delivered": r.output is not None,
                        }
                        for r in fake.submissions
                    ]
                body = json.dumps(rows).encode()
                self._reply(200, body, {"content-type": "application/json"})
            else:
                self._reply(404, b'{"detail": "no such control path"}', {})

        def _forward(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            content = self.rfile.read(length) if length else b""
            if self.path.startswith("/_fake/"):
                return self._control()
            origin = self.headers.get(ORIGIN_HEADER)
            if not origin:
                return self._reply(400, b'{"detail": "missing origin header"}', {})
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            request = httpx.Request(
                self.command, origin + self.path, headers=headers, content=content
            )
            try:
                response = fake.router.handler(request)
            except httpx.TimeoutException:
                return self._reply(599, b"", {ERROR_HEADER: "timeout"})
            with lock:
                fake.router.calls.clear()  # respx keeps every response otherwise
            self._reply(response.status_code, response.content, dict(response.headers))

        do_GET = do_POST = do_PUT = do_DELETE = _forward

    return Handler


def send_webhooks(fake: FalFake) -> None:
    """fal's webhook deliveries: every half second, POST each finished request's signed
    report to the URL its submit named (our web server, on loopback). One try each (fal
    retries for two hours; here the reconciler's polls cover a lost delivery)."""
    with httpx.Client(timeout=10.0) as client:
        while True:
            time.sleep(0.5)
            for url, body, headers in fake.due_webhooks():
                try:
                    client.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    pass  # the soak kills processes; fal would retry (the reconciler polls)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client killed mid-request (the soak kills workers) leaves a broken pipe: expected.
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, nargs=2, default=(0.05, 0.6))
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--timeout-rate", type=float, default=0.01)
    parser.add_argument("--image-seconds", type=float, default=1.0)
    parser.add_argument("--training-seconds", type=float, default=20.0)
    parser.add_argument("--slots", type=int, default=0, help="account slots (0: unlimited)")
    parser.add_argument(
        "--webhooks", action="store_true", help="POST signed webhooks when requests finish"
    )
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    chaos = Chaos(tuple(args.latency), args.error_rate, args.timeout_rate, random.Random(args.seed))
    fake = FalFake(
        run_seconds=args.image_seconds,
        training_seconds=args.training_seconds,
        chaos=chaos,
        concurrency=args.slots or None,
    )
    if args.webhooks:
        fake.sign_webhooks()
        threading.Thread(target=send_webhooks, args=(fake,), daemon=True).start()
    server = Server(("127.0.0.1", args.port), make_handler(fake))
    print(f"fal fake listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
