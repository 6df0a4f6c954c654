#!/bin/sh
# Builds the image fixtures that podserve's tests load, from Debian's busybox-static.
#
#   scripts/fixtures.sh [DIR]      (default DIR: /var/tmp/podserve-fixtures)
#
# Produces in DIR:
#   busybox-rootfs.tar       bin/busybox + applet symlinks, etc/passwd (root, nobody), etc/group, tmp
#   busybox-docker.tar       `podman save --format docker-archive` of localhost/busybox:latest
#   busybox-docker.tar.gz    the same, gzip-compressed
#   busybox-oci.tar          `podman save --format oci-archive` of localhost/busybox:latest
#   busybox-oci.tar.gz       the same, gzip-compressed
#   busybox.id               the image ID podman gave the imported image (64 hex digits)
#
# podman is used here only as a tool, with a private --root/--runroot so the host's store stays
# untouched; podserve itself never runs podman. Idempotent: returns at once when everything exists.
set -eu

DIR=${1:-/var/tmp/podserve-fixtures}
BUSYBOX=${BUSYBOX:-/bin/busybox}
NAME=localhost/busybox:latest

OUTPUTS="busybox-rootfs.tar busybox-docker.tar busybox-docker.tar.gz busybox-oci.tar busybox-oci.tar.gz busybox.id"

all_present() {
	for f in $OUTPUTS; do
		[ -s "$DIR/$f" ] || return 1
	done
	return 0
}

if all_present; then
	exit 0
fi

# Test files run in parallel and may all arrive here at once: build under a lock, and look again
# once we hold it (another run may have finished meanwhile). Mixing the outputs of two runs would
# pair archives with the wrong image ID.
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
if all_present; then
	exit 0
fi

[ -x "$BUSYBOX" ] || { echo "fixtures: $BUSYBOX missing (apt-get install busybox-static)" >&2; exit 1; }
command -v podman >/dev/null || { echo "fixtures: podman missing (apt-get install podman)" >&2; exit 1; }

# Debian's podman defaults to crun, which fails on this host; podman refuses to start without a
# usable runtime even for import/save, so make sure a containers.conf chooses runc.
if [ ! -e /etc/containers/containers.conf ]; then
	mkdir -p /etc/containers
	cat >/etc/containers/containers.conf <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
EOF
fi

WORK=$(mktemp -d /tmp/pfx.XXXXXX)
cleanup() {
	# A private overlay store can leave mounts behind; unmount them before removing the tree.
	if [ -d "$WORK/root" ]; then
		grep -o " $WORK/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# --- root filesystem -------------------------------------------------------------------------
R=$WORK/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$R/root" "$R/proc" "$R/sys" "$R/dev"
cp "$BUSYBOX" "$R/bin/busybox"
chmod 0755 "$R/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	[ "$applet" = busybox ] && continue
	ln -s busybox "$R/bin/$applet"
done
cat >"$R/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$R/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
# Deterministic archive: sorted entries, root-owned, fixed mtime.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 \
	-C "$R" -cf "$WORK/busybox-rootfs.tar" .

# --- podman import + save ----------------------------------------------------------------------
P="podman --root $WORK/root --runroot $WORK/run --storage-driver overlay"
$P import --quiet "$WORK/busybox-rootfs.tar" "$NAME" >"$WORK/import.out"
ID=$($P images --no-trunc --format '{{.ID}}' "$NAME" | sed 's/^sha256://')
[ ${#ID} -eq 64 ] || { echo "fixtures: unexpected image id '$ID'" >&2; exit 1; }
$P save --quiet --format docker-archive -o "$WORK/busybox-docker.tar" "$NAME"
$P save --quiet --format oci-archive -o "$WORK/busybox-oci.tar" "$NAME"
gzip -n -c "$WORK/busybox-docker.tar" >"$WORK/busybox-docker.tar.gz"
gzip -n -c "$WORK/busybox-oci.tar" >"$WORK/busybox-oci.tar.gz"
echo "$ID" >"$WORK/busybox.id"

# Move into place; busybox.id last, so all_present() only succeeds after a complete run.
for f in $OUTPUTS; do
	mv -f "$WORK/$f" "$DIR/$f.tmp"
done
for f in $OUTPUTS; do
	[ "$f" = busybox.id ] || mv -f "$DIR/$f.tmp" "$DIR/$f"
done
mv -f "$DIR/busybox.id.tmp" "$DIR/busybox.id"
echo "fixtures: built in $DIR (image $ID)"
