#!/usr/bin/env bash
# Installs a CRIU that works on this kernel into a private prefix, for podserve's checkpoint/restore.
#
# Debian 12's criu 3.17 fails on recent kernels ("vdso: Unexpected rt vDSO area bounds"); CRIU 4.x from Debian
# trixie works. Its .debs (and the libraries it needs, libc6 included) are fetched with `apt-get download` from
# a trixie source pinned to priority 1, unpacked with `dpkg -x` into $PREFIX, and run through that prefix's own
# dynamic loader. Nothing is installed with dpkg: the system's libc and criu stay as they are.
#
#   scripts/criu.sh            install if missing (idempotent, quick when done); prints the wrapper's path
#   PODSERVE_CRIU_PREFIX=DIR   install somewhere else (default /opt/podserve-criu)
#
# The result is $PREFIX/criu, a wrapper that podserve hands to runc (`runc --criu PATH`).
set -euo pipefail

PREFIX=${PODSERVE_CRIU_PREFIX:-/opt/podserve-criu}
WRAPPER=$PREFIX/criu
ROOT=$PREFIX/root
SOURCE_LIST=/etc/apt/sources.list.d/podserve-trixie.list
PIN_FILE=/etc/apt/preferences.d/podserve-trixie
SUITE=trixie
# criu and every library `ld.so --list` shows it needs, all from trixie (libc6 brings the loader).
PACKAGES=(criu libc6 libbsd0 libgnutls30t64 libnftables1 libprotobuf-c1 libnl-3-200 libnet1 libuuid1 libmd0
  libp11-kit0 libidn2-0 libunistring5 libtasn1-6 libhogweed6t64 libnettle8t64 libgmp10 libmnl0 libnftnl11
  libxtables12 libjansson4 libffi8)
LIBDIRS=$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/lib/x86_64-linux-gnu
LOADER=$ROOT/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2

log() { echo "criu.sh: $*" >&2; }

installed_ok() {
  [[ -x "$WRAPPER" && -f "$PREFIX/.complete" ]] || return 1
  local version
  version=$("$WRAPPER" --version 2>/dev/null | sed -n 's/^Version: *//p')
  [[ "${version%%.*}" =~ ^[0-9]+$ ]] && (( ${version%%.*} >= 4 ))
}

if installed_ok; then
  echo "$WRAPPER"
  exit 0
fi

if [[ "$(dpkg --print-architecture)" != amd64 ]]; then
  log "only amd64 is handled (the loader path is x86-64); install CRIU >= 4 yourself and pass podserve --criu PATH"
  exit 1
fi

# A trixie source that apt never prefers: priority 1 means its packages are installed only when asked for by
# release and no other version exists. (The old list/pin are rewritten only when they differ.)
want_list="deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SUITE main"
want_pin=$'# podserve: trixie only for scripts/criu.sh (apt-get download); never preferred\nPackage: *\nPin: release n='"$SUITE"$'\nPin-Priority: 1'
if [[ ! -f "$SOURCE_LIST" ]] || [[ "$(cat "$SOURCE_LIST")" != "$want_list" ]]; then
  printf '%s\n' "$want_list" > "$SOURCE_LIST"
fi
if [[ ! -f "$PIN_FILE" ]] || [[ "$(cat "$PIN_FILE")" != "$want_pin" ]]; then
  printf '%s\n' "$want_pin" > "$PIN_FILE"
fi

# Refresh only the trixie list (quick, and leaves the system's other lists alone).
# A network hiccup should not fail the whole setup: try a few times.
retry() {
  local n
  for n in 1 2 3; do
    "$@" && return 0
    log "attempt $n of: $* failed"
    sleep $((n * 5))
  done
  return 1
}

# Refresh only the trixie list (quick, and leaves the system's other lists alone).
log "updating the $SUITE package list"
retry apt-get update -qq -o Dir::Etc::sourcelist="$SOURCE_LIST" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0

work=$(mktemp -d /tmp/podserve-criu.XXXXXX)
chown _apt "$work" 2>/dev/null || true  # apt downloads as _apt when it can write there
staging=$PREFIX.new
cleanup() { rm -rf "$work" "$staging"; }
trap cleanup EXIT

log "downloading ${PACKAGES[*]} from $SUITE"
(cd "$work" && retry apt-get download -qq "${PACKAGES[@]/%//$SUITE}" >/dev/null)

rm -rf "$staging"
mkdir -p "$staging/root"
for deb in "$work"/*.deb; do
  dpkg -x "$deb" "$staging/root"
done
if [[ ! -x "$staging/root/usr/sbin/criu" || ! -e "$staging/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ]]; then
  log "the downloaded packages lack criu or the loader"
  exit 1
fi

# The wrapper: criu through the prefix's own loader and libraries. `exec` keeps the fds runc passes (swrk).
cat > "$staging/criu" <<WRAPPER
#!/bin/sh
# CRIU from Debian $SUITE in a private prefix (installed by podserve's scripts/criu.sh).
exec $LOADER --library-path $LIBDIRS $ROOT/usr/sbin/criu "\$@"
WRAPPER
chmod 0755 "$staging/criu"

# Swap the new prefix in whole, so a half-done install is never used.
rm -rf "$PREFIX.old"
[[ -e "$PREFIX" ]] && mv "$PREFIX" "$PREFIX.old"
mv "$staging" "$PREFIX"
rm -rf "$PREFIX.old"

missing=$("$LOADER" --library-path "$LIBDIRS" --list "$ROOT/usr/sbin/criu" | grep 'not found' || true)
if [[ -n "$missing" ]]; then
  log "libraries missing for criu:"$'\n'"$missing"
  exit 1
fi
outside=$("$LOADER" --library-path "$LIBDIRS" --list "$ROOT/usr/sbin/criu" | grep '=>' | grep -v "$ROOT" || true)
[[ -z "$outside" ]] || log "note: some libraries come from the system:"$'\n'"$outside"

version=$("$WRAPPER" --version | sed -n 's/^Version: *//p')
log "installed CRIU $version at $WRAPPER"
if ! "$WRAPPER" check >/dev/null 2>&1; then
  log "warning: '$WRAPPER check' reports problems on this host; checkpointing may fail"
fi
touch "$PREFIX/.complete"
echo "$WRAPPER"
