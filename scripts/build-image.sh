#!/usr/bin/env bash
# Build jobq/busybox:latest, a tiny image holding Debian's static busybox, with
# no registry: a root filesystem imported with `docker import`.
set -euo pipefail
IMAGE="${1:-jobq/busybox:latest}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if $SUDO docker image inspect "$IMAGE" >/dev/null 2>&1; then exit 0; fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/proc" "$root/sys" "$root/dev"
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  # The applet list includes busybox itself; linking it would clobber the binary.
  [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
chmod 1777 "$root/tmp"
tar -C "$root" -c . | $SUDO docker import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - "$IMAGE" >/dev/null
echo "==> built $IMAGE"
