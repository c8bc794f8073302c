#!/usr/bin/env bash
# Start the local Redis and PostgreSQL the tests use, when they are installed but not running.
set -u
port_open() { (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

if ! port_open 6379; then
  if command -v redis-server >/dev/null; then
    echo "starting redis-server"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || redis-server --daemonize yes --port 6379 --save ""
  else
    echo "redis-server is not installed; integration tests need Redis on 127.0.0.1:6379" >&2
  fi
fi
if ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null; then
    echo "starting postgresql"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  else
    echo "PostgreSQL is not installed; migration tests need it on 127.0.0.1:5432" >&2
  fi
fi
for _ in $(seq 1 30); do port_open 6379 && port_open 5432 && exit 0; sleep 1; done
echo "Redis or PostgreSQL did not come up" >&2
exit 1
