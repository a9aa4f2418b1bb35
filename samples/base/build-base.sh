#!/usr/bin/env bash
# The one base image every sample builds FROM: Debian bookworm from the apt mirror
# (mmdebstrap into a tarball, then `FROM scratch` + `ADD`), built once per backend and reused.
#
#   samples/base/build-base.sh BACKEND      (docker | namespace)
#
# The tarball is cached in $PYCOMPOSE_CACHE (default /var/cache/pycompose/samples) and only
# rebuilt when it is missing, so a second CI run on the same machine skips this step.
# The host's CA bundle goes into the image: a TLS-intercepting proxy (as in some CI
# sandboxes) then works for pip and curl inside builds; on a normal host it is just the
# usual bundle.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
backend=${1:?usage: build-base.sh docker|namespace}
PYCOMPOSE=${PYCOMPOSE:-$here/../../.venv/bin/pycompose}
cache=${PYCOMPOSE_CACHE:-/var/cache/pycompose/samples}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$cache"
if [ ! -f "$cache/debian-bookworm.tar" ] || [ ! -s "$cache/debian-bookworm.tar" ]; then
  rm -rf "$cache/debian-bookworm.tar"
  command -v mmdebstrap >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
  }
  echo "base: mmdebstrap bookworm from $mirror"
  # written under a temporary name, moved in place once whole (mmdebstrap picks the output
  # format from the name, hence the .tar ending and --format)
  rm -rf "$cache/partial-debian-bookworm.tar"
  mmdebstrap --quiet --variant=minbase --mode=root --format=tar \
    --include=busybox,ca-certificates bookworm "$cache/partial-debian-bookworm.tar" "$mirror"
  mv "$cache/partial-debian-bookworm.tar" "$cache/debian-bookworm.tar"
fi
# the build context takes hard links (same filesystem) or copies; both are git-ignored
ln -f "$cache/debian-bookworm.tar" "$here/rootfs.tar" 2>/dev/null \
  || cp -f "$cache/debian-bookworm.tar" "$here/rootfs.tar"
cp -f /etc/ssl/certs/ca-certificates.crt "$here/host-ca.crt"
"$PYCOMPOSE" --backend "$backend" -f "$here/compose.yaml" build base
