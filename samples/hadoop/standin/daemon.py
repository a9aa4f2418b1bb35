"""One stand-in Hadoop daemon: a web server on the real daemon's port that tells which
daemon and host answered (`/` and the JMX path the real UIs serve)."""

import json
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORTS = {"namenode": 9870, "datanode": 9864, "resourcemanager": 8088, "nodemanager": 8042}
role = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"daemon": role, "host": socket.gethostname(), "standin": True})
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


if role not in PORTS:
    sys.exit(f"stand-in: unknown daemon {role!r} (known: {', '.join(PORTS)})")
print(f"stand-in {role} listening on {PORTS[role]}", flush=True)
ThreadingHTTPServer(("0.0.0.0", PORTS[role]), Handler).serve_forever()
