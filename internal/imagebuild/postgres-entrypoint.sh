#!/bin/sh
# Entrypoint of the local PostgreSQL image (internal/imagebuild): the official
# postgres image's contract, as far as the operator's StatefulSet uses it. On an
# empty $PGDATA it runs initdb with POSTGRES_USER as the superuser, the password
# from POSTGRES_PASSWORD and POSTGRES_INITDB_ARGS, allows password (SCRAM) logins
# from any address, and creates POSTGRES_DB; then it runs the server, listening on
# every address. Any other command runs as given.
set -eu

case "${1:-postgres}" in
  postgres) [ $# -gt 0 ] && shift ;;
  -*) ;;
  *) exec "$@" ;;
esac

: "${PGDATA:?PGDATA must be set}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set to initialise an empty PGDATA}"
  user="${POSTGRES_USER:-postgres}"
  db="${POSTGRES_DB:-$user}"
  umask 077
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options
  initdb --username="$user" --pwfile="$pwfile" ${POSTGRES_INITDB_ARGS:-}
  rm -f "$pwfile"
  printf '\n# Added by the image entrypoint: password logins from the pod network.\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    # Single-user mode: no server, no socket, no password needed yet.
    printf 'CREATE DATABASE "%s";\n' "$(printf '%s' "$db" | sed 's/"/""/g')" |
      postgres --single -j -D "$PGDATA" postgres >/dev/null
  fi
  echo "initialised $PGDATA (superuser $user, database $db)"
fi

exec postgres -c listen_addresses='*' "$@"
