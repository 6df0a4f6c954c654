#!/usr/bin/env bash
# Sets up what is missing, then starts podserve on its default socket (unix:///run/podserve/podserve.sock)
# with its embedded defaults, never exiting for idleness. Extra arguments go to `podserve service`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec node dist/src/launch.cjs service --time 0 "$@"
