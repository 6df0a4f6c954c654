#!/usr/bin/env bash
# Installs podserve from this checkout as a socket-activated systemd service:
#   /usr/local/bin/podserve   a small wrapper running this checkout's dist/src/launch.cjs with this machine's node
#   the system units          /etc/systemd/system/podserve.{socket,service}
#   the user units            /etc/systemd/user/podserve.{socket,service} (for every user; enable per user)
# then reloads systemd when it is running. Build first (scripts/setup.sh). DESTDIR=/some/dir installs below that
# directory instead of / and touches nothing else (tests and packaging use it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
dest="${DESTDIR:-}"

node_bin="$(command -v node)" || { echo "install: node is not on PATH" >&2; exit 1; }
[[ -f "$repo/dist/src/launch.cjs" ]] || { echo "install: $repo/dist/src/launch.cjs is missing: build first (scripts/setup.sh)" >&2; exit 1; }

install -d "$dest/usr/local/bin" "$dest/etc/systemd/system" "$dest/etc/systemd/user"
# exec keeps the pid: systemd's NotifyAccess=main accepts READY=1 only from the process it started.
printf '#!/bin/sh\nexec %q %q "$@"\n' "$node_bin" "$repo/dist/src/launch.cjs" > "$dest/usr/local/bin/podserve.new"
chmod 0755 "$dest/usr/local/bin/podserve.new"
mv -f "$dest/usr/local/bin/podserve.new" "$dest/usr/local/bin/podserve"
install -m 0644 "$here/podserve.socket" "$here/podserve.service" "$dest/etc/systemd/system/"
install -m 0644 "$here/user/podserve.socket" "$here/user/podserve.service" "$dest/etc/systemd/user/"

if [[ -z "$dest" && -d /run/systemd/system ]]; then
  systemctl daemon-reload
  echo "install: done. Start with: systemctl enable --now podserve.socket" >&2
else
  echo "install: installed under ${dest:-/}; systemd is not running here, nothing reloaded" >&2
fi
