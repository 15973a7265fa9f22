#!/bin/sh
# Rendered by the authstack operator: forms the Redis Cluster once; safe to re-run.
set -eu
replicas="$1"; shift
nodes=""
for n in "$@"; do
  host="${n%:*}"; port="${n##*:}"
  # CLUSTER MEET needs addresses: resolve names (retrying while DNS catches up).
  ip=""
  for _ in $(seq 1 60); do
    ip="$(getent hosts "$host" | awk '{print $1; exit}')" || true
    [ -n "$ip" ] && break
    sleep 2
  done
  [ -n "$ip" ] || { echo "cannot resolve $host" >&2; exit 1; }
  for _ in $(seq 1 60); do
    redis-cli -h "$ip" -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 2
  done
  redis-cli -h "$ip" -p "$port" ping | grep -q PONG || { echo "$host does not answer" >&2; exit 1; }
  nodes="$nodes $ip:$port"
done
first="${nodes# }"; first="${first%% *}"
fhost="${first%:*}"; fport="${first##*:}"
known="$(redis-cli -h "$fhost" -p "$fport" cluster info | tr -d '\r' | awk -F: '$1=="cluster_known_nodes"{print $2}')"
if [ "${known:-1}" -gt 1 ]; then
  echo "the cluster is already formed ($known nodes known); not creating it again"
else
  # shellcheck disable=SC2086
  redis-cli --cluster create $nodes --cluster-replicas "$replicas" --cluster-yes
fi
for _ in $(seq 1 90); do
  if redis-cli -h "$fhost" -p "$fport" cluster info | tr -d '\r' | grep -q '^cluster_state:ok$'; then
    echo "cluster_state:ok"
    exit 0
  fi
  sleep 2
done
echo "the cluster did not reach cluster_state:ok" >&2
exit 1
