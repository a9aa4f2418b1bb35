"""The result page: the vote counts read from PostgreSQL, as JSON."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2


def counts() -> dict:
    conn = psycopg2.connect(host=os.environ.get("DB_HOST", "db"), user="postgres",
                            dbname="postgres", connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS votes (id TEXT PRIMARY KEY, vote TEXT NOT NULL)")
            cur.execute("SELECT vote, COUNT(*) FROM votes GROUP BY vote")
            found = dict(cur.fetchall())
        conn.commit()
    finally:
        conn.close()
    return {"a": found.get("a", 0), "b": found.get("b", 0)}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            code, body = 200, counts()
        except psycopg2.Error as exc:
            code, body = 503, {"error": str(exc).strip()}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("0.0.0.0", 80), Handler).serve_forever()
