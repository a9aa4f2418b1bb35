"""Moves ballots from redis into PostgreSQL: one row per voter, the last vote wins."""

import json
import os
import time

import psycopg2
import redis

store = redis.Redis(host=os.environ.get("REDIS_HOST", "redis"), socket_timeout=None)


def connect():
    while True:
        try:
            conn = psycopg2.connect(host=os.environ.get("DB_HOST", "db"), user="postgres",
                                    dbname="postgres", connect_timeout=3)
            conn.autocommit = True
            return conn
        except psycopg2.OperationalError as exc:
            print(f"waiting for db: {exc}".strip(), flush=True)
            time.sleep(1)


conn = connect()
with conn.cursor() as cur:
    cur.execute("CREATE TABLE IF NOT EXISTS votes (id TEXT PRIMARY KEY, vote TEXT NOT NULL)")
print("worker: ready", flush=True)
while True:
    _, raw = store.blpop("votes")
    ballot = json.loads(raw)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO votes (id, vote) VALUES (%s, %s) "
            "ON CONFLICT (id) DO UPDATE SET vote = EXCLUDED.vote",
            (ballot["voter_id"], ballot["vote"]),
        )
    print(f"worker: stored {ballot['vote']}", flush=True)
