#!/usr/bin/env bash
# Makes sure a Docker engine answers and the local test image exists, for the
# Docker input tests (called by scripts/ensure-peers.sh; usable by hand).
#  1. installs Debian's docker.io and busybox-static when missing;
#  2. starts dockerd in the background when no daemon answers (log:
#     $OPSHUB_DOCKERD_LOG, default /var/log/opshub-dockerd.log) and waits for it;
#  3. builds the image opshub-test/busybox with `docker import` from a rootfs
#     holding /bin/busybox and links for all its applets (no registry needed).
# Idempotent, and quick when everything is already there.
set -euo pipefail

IMAGE=opshub-test/busybox
LOG=${OPSHUB_DOCKERD_LOG:-/var/log/opshub-dockerd.log}

need=()
dpkg -s docker.io >/dev/null 2>&1 || need+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
if ((${#need[@]})); then
  echo "installing ${need[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Debian's client talks to Debian's daemon (a newer /usr/local/bin/docker may not).
DOCKER=/usr/bin/docker
[[ -x $DOCKER ]] || DOCKER=$(command -v docker)

if ! "$DOCKER" info >/dev/null 2>&1; then
  echo "starting dockerd (log: $LOG)"
  mkdir -p "$(dirname "$LOG")"
  setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! "$DOCKER" info >/dev/null 2>&1; then
    echo "dockerd did not come up; last lines of $LOG:" >&2
    tail -n 30 "$LOG" >&2 || true
    exit 1
  fi
fi

if ! "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "building $IMAGE from busybox-static"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/proc" "$root/sys" "$root/dev"
  cp "$(dpkg -L busybox-static | grep -E '/bin/busybox$' | head -n 1)" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  tar -C "$root" -c . | "$DOCKER" import \
    --change 'ENV PATH=/bin' \
    --change 'CMD ["/bin/sh"]' \
    - "$IMAGE" >/dev/null
fi
echo "docker: $("$DOCKER" version --format '{{.Server.Version}}') with $IMAGE"
