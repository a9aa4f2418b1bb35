"""The vote front end: POST /vote with `vote=a|b` pushes the ballot onto the redis list
`votes`; GET / tells which replica and version answered; GET /healthz for healthchecks."""

import json
import os
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import redis

VERSION = os.environ.get("VERSION", "1")
store = redis.Redis(host=os.environ.get("REDIS_HOST", "redis"), socket_timeout=5)


class Handler(BaseHTTPRequestHandler):
    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            store.ping()
            self._send(200, {"ok": True})
        else:
            self._send(200, {"replica": socket.gethostname(), "version": VERSION})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        choice = form.get("vote", [""])[0]
        if choice not in ("a", "b"):
            self._send(400, {"error": "vote must be a or b"})
            return
        voter = form.get("voter", [os.urandom(8).hex()])[0]
        store.rpush("votes", json.dumps({"voter_id": voter, "vote": choice}))
        self._send(200, {"voted": choice, "replica": socket.gethostname(), "version": VERSION})

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("0.0.0.0", 80), Handler).serve_forever()
