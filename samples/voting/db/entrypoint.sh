#!/bin/sh
# First start: initdb into the volume (trust auth: a sample on a private network, never
# published). Every start: run postgres as its own user in the foreground.
set -e
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  runuser -u postgres -- initdb -D "$PGDATA" --auth=trust --username=postgres >/dev/null
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
fi
exec runuser -u postgres -- postgres -D "$PGDATA"
