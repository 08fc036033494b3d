#!/bin/sh
# First start: initdb, accept connections from the container network, create POSTGRES_DB.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" \
        --auth="${POSTGRES_HOST_AUTH_METHOD:-trust}" -E UTF8 --no-sync --no-instructions
    {
        echo "listen_addresses = '*'"
        echo "unix_socket_directories = '/tmp'"
    } >> "$PGDATA/postgresql.conf"
    echo "host all all all ${POSTGRES_HOST_AUTH_METHOD:-trust}" >> "$PGDATA/pg_hba.conf"
    if [ -n "${POSTGRES_DB:-}" ] && [ "${POSTGRES_DB}" != "${POSTGRES_USER:-postgres}" ]; then
        echo "CREATE DATABASE \"${POSTGRES_DB}\";" \
            | postgres --single -D "$PGDATA" -c unix_socket_directories=/tmp postgres >/dev/null
    fi
fi
exec "$@"
