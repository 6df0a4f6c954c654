#!/usr/bin/env bash
# Sets up what is missing (system packages, npm packages, build, fixtures), then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
exec npx tap "$@"
