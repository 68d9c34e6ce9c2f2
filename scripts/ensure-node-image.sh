#!/usr/bin/env bash
# Makes the local base image opshub-test/node:20 that the image tests build
# the Dockerfile on (`--build-arg BASE=opshub-test/node:20`), since no image
# registry can be reached:
#  1. a Debian bookworm root filesystem from `debootstrap --variant=minbase`,
#     fetched from the same Debian mirror apt uses here (read from
#     /etc/apt/sources.list*); the result is cached as a tarball under
#     $OPSHUB_CACHE_DIR (default /var/cache/opshub-test), keyed by a hash of
#     suite, variant, mirror and this script, because debootstrap takes a while;
#  2. this machine's node binary and npm copied into it;
#  3. `tar | docker import` with PATH and the node version as a label.
# Idempotent: nothing is done when the image exists with the same node version.
# Needs Docker (scripts/ensure-docker.sh) and root (debootstrap).
set -euo pipefail

IMAGE=${OPSHUB_NODE_IMAGE:-opshub-test/node:20}
CACHE=${OPSHUB_CACHE_DIR:-/var/cache/opshub-test}
SUITE=bookworm
VARIANT=minbase
DOCKER=/usr/bin/docker
[[ -x $DOCKER ]] || DOCKER=$(command -v docker)

NODE_BIN=$(readlink -f "$(command -v node)")
NODE_VERSION=$("$NODE_BIN" --version)
NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")") # …/node_modules/npm

if [[ $("$DOCKER" image inspect -f '{{index .Config.Labels "opshub.node"}}' "$IMAGE" 2>/dev/null || true) == "$NODE_VERSION" ]]; then
  echo "base image: $IMAGE (node $NODE_VERSION)"
  exit 0
fi

command -v debootstrap >/dev/null 2>&1 || {
  echo "installing debootstrap from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

# The mirror apt uses for the main archive (deb822 `URIs:` or one-line `deb URL SUITE`).
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk -v suite="$SUITE" '
      /^[ \t]*$/ { if (uri && ok) { print uri; done = 1; exit } uri = ""; ok = 0; next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
      END { if (!done && uri && ok) print uri }' "$f"
  done
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } |
    awk -v suite="$SUITE" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i == suite) { u = $2; if (u ~ /^\[/) u = $3; print u; exit } }'
}
MIRROR=${OPSHUB_DEBIAN_MIRROR:-$(mirror | head -n 1 || true)}
[[ -n $MIRROR ]] || { echo "no Debian mirror for $SUITE in /etc/apt/sources.list*; set OPSHUB_DEBIAN_MIRROR" >&2; exit 1; }

KEY=$(printf '%s\n' "$SUITE" "$VARIANT" "$MIRROR" "$(sha256sum "$0" | cut -c1-16)" | sha256sum | cut -c1-16)
ROOTFS_TAR=$CACHE/debootstrap-$SUITE-$VARIANT-$KEY.tar
mkdir -p "$CACHE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ ! -s $ROOTFS_TAR ]]; then
  echo "debootstrap --variant=$VARIANT $SUITE (once; cached in $ROOTFS_TAR)"
  debootstrap --variant="$VARIANT" "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
  }
  # Leave out what an image does not need, then write the cache atomically.
  rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/dev/*
  tar -C "$work/rootfs" -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$work/rootfs"
fi

echo "building $IMAGE: $SUITE $VARIANT + node $NODE_VERSION"
mkdir -p "$work/rootfs"
tar -C "$work/rootfs" -xf "$ROOTFS_TAR"
install -m 0755 "$NODE_BIN" "$work/rootfs/usr/local/bin/node"
mkdir -p "$work/rootfs/usr/local/lib/node_modules"
cp -a "$NPM_DIR" "$work/rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
tar -C "$work/rootfs" -c . | "$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${NODE_VERSION#v}" \
  --change "LABEL opshub.node=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  - "$IMAGE" >/dev/null
echo "base image: $IMAGE (node $NODE_VERSION)"
