#!/usr/bin/env bash
# Installs what podserve needs on Debian 12 (as root) and builds it. Idempotent: quick when nothing is missing.
#   scripts/setup.sh          runtime needs: runc, conmon, util-linux; npm packages; build
#   scripts/setup.sh --test   also what the tests use: podman (client + reference service), busybox-static,
#                             curl, tmux, systemd (systemd-socket-activate), test fixtures
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

packages=(runc conmon util-linux iproute2 procps attr zstd)
if (( want_test )); then
  packages+=(podman busybox-static curl tmux systemd openssl uidmap docker-registry)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if (( ${#missing[@]} )); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# CRIU 4 in a private prefix for checkpoint/restore (Debian 12's criu 3.17 fails on this kernel).
# Without it podserve still runs; /info then reports checkpointing unavailable (and its tests fail).
scripts/criu.sh >/dev/null || echo "setup: warning: installing CRIU failed: checkpoint/restore will not work" >&2

# npm packages: install only when the lock file changed since the last install. (`npm install` rather than
# `npm ci`: node-unix-socket declares platform packages that do not exist, which `npm ci` refuses.)
stamp=node_modules/.podserve-lock-stamp
if [[ ! -f "$stamp" ]] || ! cmp -s package-lock.json "$stamp"; then
  echo "setup: npm install" >&2
  npm install --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

# Build: the native addon (rebuilt when its sources change), then TypeScript, then the bundle.
if [[ ! -f build/Release/podserve.node || -n "$(find native binding.gyp -newer build/Release/podserve.node -print -quit)" ]]; then
  npx node-gyp rebuild --loglevel=error >/dev/null
fi
npx tsc -p tsconfig.json
node scripts/bundle.mjs

if (( want_test )); then
  # Debian's podman (a test tool and the reference service) needs runc and host-compatible rlimits here.
  if [[ ! -f /etc/containers/containers.conf ]]; then
    mkdir -p /etc/containers
    cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
  fi
  if [[ -x scripts/fixtures.sh ]]; then
    scripts/fixtures.sh >/dev/null
  fi
fi
