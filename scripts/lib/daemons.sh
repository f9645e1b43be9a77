# shellcheck shell=bash
# Daemons and certificates for the test clusters, shared by scripts/control-plane and
# scripts/node (sourced). The caller sets STATE (its state dir, holding pids/, logs/,
# cmdlines/ and certs/) and defines log/die.

# Certificates with ECDSA P-256 keys: generation is instant (RSA would add seconds to every
# `up`), and kube-apiserver, Go, rustls and OpenSSL clients all accept them.
gen_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; chmod 600 "$1"; }

# A key and a certificate $STATE/certs/<name>.{key,crt} signed by the CA in CA_DIR (default
# $STATE/certs).
sign_cert() { # <name> <subject> <extensions>
  local c="$STATE/certs" ca="${CA_DIR:-$STATE/certs}"
  gen_key "$c/$1.key"
  openssl req -new -key "$c/$1.key" -subj "$2" 2>/dev/null |
    openssl x509 -req -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial -CAserial "$c/.ca.srl" -days 365 \
      -out "$c/$1.crt" -extfile <(printf '%s\n' "$3") 2>/dev/null
}

# Start a daemon detached from our stdout (so `$(control-plane up)` returns) and from the
# terminal's session (so ^C in the caller's shell does not kill it); record its PID and
# executable so `down` only ever signals exactly the process it started.
# DAEMON_EXE names the executable the process ends up as when <cmd> is a wrapper that execs it
# (e.g. unshare).
start_daemon() { # <name> <cmd>...
  local name="$1" pidf="$STATE/pids/$1" exe i
  shift
  exe="$(readlink -f "${DAEMON_EXE:-$1}")" # /proc/PID/exe is always the resolved path
  # The inner shell records its own PID and then execs the binary, so the PID is right
  # whether or not setsid had to fork.
  # The command line is kept so the daemon can be restarted as it was (restart_daemon).
  mkdir -p "$STATE/cmdlines"
  printf '%s\0' "$@" >"$STATE/cmdlines/$name"
  # shellcheck disable=SC2016 # expanded by the inner shell
  # Inherited descriptors are closed first: a daemon must not keep open what its caller held,
  # e.g. the lock file of `flock LOCK scripts/node up`, which would then stay locked for as long
  # as the daemon runs.
  setsid bash -c 'for fd in /proc/$$/fd/*; do fd=${fd##*/}; ((fd > 2)) && eval "exec $fd>&-"; done; echo "$$ $1" >"$2.tmp" && mv "$2.tmp" "$2" && shift 2 && exec "$@"' \
    _ "$exe" "$pidf" "$@" </dev/null >>"$STATE/logs/$name.log" 2>&1 &
  for ((i = 0; i < 50; i++)); do [[ -f $pidf ]] && return 0; sleep 0.02; done
  die "$name did not start"
}

# True if the PID file's process is alive and is still the binary we started (guards
# against PID reuse after a crash).
daemon_alive() { # <name>
  local f="$STATE/pids/$1" pid exe exe_of
  [[ -f $f ]] || return 1
  read -r pid exe <"$f"
  [[ -d /proc/$pid ]] || return 1
  exe_of="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "${exe_of% (deleted)}" == "$exe" ]] # still ours even if the cache was rebuilt meanwhile
}

stop_daemon() { # <name>
  local f="$STATE/pids/$1" pid exe i
  daemon_alive "$1" || { rm -f "$f"; return 0; }
  read -r pid exe <"$f"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do # 10s grace, then SIGKILL
    daemon_alive "$1" || break
    # A zombie (our child, if `up` and `down` ran in one shell) counts as exited.
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && break
    sleep 0.1
  done
  if daemon_alive "$1" && [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]; then
    log "$1 (pid $pid) ignored SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$f"
}

# SIGKILL, for a daemon whose state is thrown away anyway.
kill_daemon() { # <name>
  local f="$STATE/pids/$1" pid exe
  daemon_alive "$1" || return 0
  read -r pid exe <"$f"
  kill -KILL "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 50; i++)); do
    daemon_alive "$1" || break
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && break
    sleep 0.02
  done
}

# Readiness poll with the admin client cert; fails fast if the process died.
wait_ready() { # <name> <url> <timeout-s> [curl args...]
  local name="$1" url="$2" timeout="$3"; shift 3
  local deadline=$((SECONDS + timeout))
  until [[ "$(curl -sf --max-time 2 "$@" "$url" 2>/dev/null)" == ok ]]; do
    if ! daemon_alive "$name"; then
      log "$name exited during startup; last lines of $STATE/logs/$name.log:"
      tail -n 30 "$STATE/logs/$name.log" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name not ready at $url after ${timeout}s; last lines of $STATE/logs/$name.log:"
      tail -n 30 "$STATE/logs/$name.log" >&2
      return 1
    fi
    sleep 0.2
  done
}

# Starts a daemon again with the command line it was first started with.
restart_daemon() { # <name>
  local name="$1" args=()
  [[ -f "$STATE/cmdlines/$name" ]] || die "$name was never started in $STATE"
  mapfile -d '' args <"$STATE/cmdlines/$name"
  stop_daemon "$name"
  start_daemon "$name" "${args[@]}"
}
