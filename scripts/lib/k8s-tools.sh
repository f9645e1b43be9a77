# shellcheck shell=bash
# Building Kubernetes tools from the pinned Go modules in scripts/k8s-tools/*, shared by
# scripts/control-plane and scripts/node (sourced). The caller sets TOOLS_SRC and log/die.
#
# Each caller builds its own set of binaries into its own cache directory, keyed by the pinned
# module graphs it builds from and its own recipe revision, so one script's build never changes
# the other's cache key.

# Version of a module as required by one of the pinned tool modules (read from go.mod
# directly so a warm run does not need the Go toolchain at all).
mod_version() { # <tools-subdir> <module>
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$TOOLS_SRC/$1/go.mod"
}

find_go() {
  if [[ -n ${GO:-} ]]; then printf '%s' "$GO"
  elif command -v go >/dev/null 2>&1; then command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then printf '/usr/local/go/bin/go'
  else die "no Go toolchain found (set GO=/path/to/go)"; fi
}

# go build one tools module's binaries (into <out>: a dir if it ends in /, else a file).
# Needs GO_CMD and JOBS.
go_build() { # <tools-subdir> <out> <ldflags> <package>...
  local sub="$1" out="$2" ldflags="$3"; shift 3
  log "building $* (module $sub) ..."
  # -mod=readonly: go.mod/go.sum are the pin; a build must never silently edit them.
  # CGO_ENABLED=0: static binaries as upstream ships them; no C toolchain needed.
  # -trimpath + -s -w: reproducible, smaller binaries.
  (cd "$TOOLS_SRC/$sub" && CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly" \
    "$GO_CMD" build -p "$JOBS" -ldflags "$ldflags" -o "$out" "$@")
}

# Upstream's hack/lib/version.sh stamps these; without them the binaries report gitVersion
# v0.0.0-master, which breaks clients that compare server versions (e.g. helm's chart
# kubeVersion constraints) and the kubelet's version skew checks.
k8s_version_ldflags() { # <tools-subdir>
  local k8s minor p out=""
  k8s="$(mod_version "$1" k8s.io/kubernetes)"
  minor="${k8s#v1.}"; minor="${minor%%.*}"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    out+=" -X $p.gitVersion=$k8s -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  printf '%s' "$out"
}

# The stamp is written last, so its presence (with the right key) means every binary
# finished building; a half-done build from an interrupted run is never picked up.
tools_built() { # <bin-dir> <key> <binary>...
  local bin="$1" key="$2" b; shift 2
  [[ -f "$bin/../stamp" && "$(cat "$bin/../stamp")" == "$key" ]] || return 1
  for b in "$@"; do [[ -x "$bin/$b" ]] || return 1; done
}

# Builds into <root>/bin under a lock unless already built, by calling <build-fn> <tmp-dir>
# (which must fill the dir with every binary); prints the bin dir.
tools_build_cached() { # <root> <key> <build-fn> <binary>...
  local root="$1" key="$2" build_fn="$3" tmp; shift 3
  local bin="$root/bin"
  if tools_built "$bin" "$key" "$@"; then printf '%s\n' "$bin"; return 0; fi
  mkdir -p "$root"
  # Serialize concurrent builds (e.g. parallel test jobs each calling `up`): the second
  # waits and then finds the stamp.
  exec 9>"$root/.lock"
  flock 9
  if tools_built "$bin" "$key" "$@"; then exec 9>&-; printf '%s\n' "$bin"; return 0; fi

  GO_CMD="$(find_go)"
  JOBS="${HEX_TOOLS_JOBS:-$(nproc)}"
  log "cold build into $root with $("$GO_CMD" version) (-p $JOBS); this takes a while"
  tmp="$root/tmp.$$"
  rm -rf "$root"/tmp.*; mkdir -p "$tmp" # leftovers of interrupted builds (we hold the lock)
  local start=$SECONDS
  "$build_fn" "$tmp"
  rm -rf "$bin"; mv "$tmp" "$bin"
  printf '%s\n' "$key" >"$root/stamp"
  exec 9>&-
  log "built $* in $((SECONDS - start))s"
  printf '%s\n' "$bin"
}
