# Sourced by hack/dev-cluster.sh and hack/real-node.sh: daemons recorded by pid
# in $PIDS, logging to $LOGS/NAME.log. The caller defines log and die.
# shellcheck shell=bash

pid_of() { [ -f "$PIDS/$1" ] && cat "$PIDS/$1" || true; }

# alive NAME: the recorded pid runs and is still our binary (not a recycled pid).
alive() {
  local pid; pid=$(pid_of "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  local exe; exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true); exe=${exe% (deleted)}
  [ "${exe##*/}" = "$1" ] || return 1
}

# start NAME BINARY ARGS...: a daemon in its own session, output to logs/NAME.log.
start() {
  local name="$1"; shift
  alive "$name" && return 0
  mkdir -p "$LOGS" "$PIDS"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PIDS/$name"
  # Until the forked shell has exec'd setsid and setsid the binary, /proc/<pid>/exe
  # is bash's or setsid's and alive() says no: on a busy machine a wait_for then
  # reports the component dead although it is starting. Wait for the exec (5 s at most).
  for _ in $(seq 50); do
    if alive "$name" || ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
}

stop() { # NAME: SIGTERM, wait up to 15 s, then SIGKILL
  local name="$1" pid
  pid=$(pid_of "$name")
  if [ -n "$pid" ] && alive "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 15 s, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  rm -f "$PIDS/$name"
}

# wait_for WHAT SECONDS NAME CMD...: poll CMD until it succeeds; fail early when NAME died.
wait_for() {
  local what="$1" secs="$2" name="$3"; shift 3
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$name" ] && ! alive "$name"; then
      tail -n 30 "$LOGS/$name.log" >&2 || true
      die "$name exited while waiting for $what (log: $LOGS/$name.log)"
    fi
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$LOGS/$name.log" >&2 || true; die "timed out after ${secs}s waiting for $what"; }
    sleep 0.3
  done
}


# port_busy PORT: something listens on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
