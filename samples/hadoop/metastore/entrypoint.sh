#!/bin/sh
# Every start: make sure a data directory, a `metastore` database and a `hive` user reachable
# over the network exist (password from METASTORE_PASSWORD; the SQL is idempotent), then run
# mariadbd in the foreground. (Debian's package already made /var/lib/mysql/mysql in the
# image, so "first start" cannot be told from that directory.)
set -e
mkdir -p /var/lib/mysql /run/mysqld
chown -R mysql:mysql /var/lib/mysql /run/mysqld
[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
cat > /run/mysqld/init.sql <<SQL
CREATE DATABASE IF NOT EXISTS metastore;
CREATE USER IF NOT EXISTS 'hive'@'%' IDENTIFIED BY '${METASTORE_PASSWORD:-hive}';
GRANT ALL ON metastore.* TO 'hive'@'%';
FLUSH PRIVILEGES;
SQL
exec mariadbd --user=mysql --bind-address=0.0.0.0 --init-file=/run/mysqld/init.sql
