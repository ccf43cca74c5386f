#!/usr/bin/env bash
# Makes the base image the Dockerfiles name (default `debian:bookworm-slim`) on a machine that cannot
# pull images: a minimal Debian root made with `debootstrap --variant=minbase`, trimmed like the
# official slim image, and `docker import`ed under exactly that tag.
#
# Cached twice: nothing happens when the tag already exists (a real pulled image or an earlier run),
# and the root tarball is kept in $QDRANT_IMAGE_CACHE (default .cache/images) so a pruned image is
# re-imported in seconds without downloading again.
#
# Usage: docker/build-base-image.sh [TAG]        (TAG default: debian:bookworm-slim)
# Env:   DEBIAN_MIRROR (default http://deb.debian.org/debian), FORCE=1 rebuilds even if cached.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG="${1:-debian:bookworm-slim}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CACHE_DIR="${QDRANT_IMAGE_CACHE:-$PWD/.cache/images}"

case "$TAG" in
  debian:bookworm-slim|debian:bookworm|debian:12-slim|debian:12) SUITE=bookworm ;;
  debian:trixie-slim|debian:trixie|debian:13-slim|debian:13) SUITE=trixie ;;
  *) echo "build-base-image: don't know which Debian suite makes '$TAG'" >&2; exit 2 ;;
esac
TARBALL="$CACHE_DIR/$SUITE-minbase-$(dpkg --print-architecture 2>/dev/null || echo amd64).tar.gz"

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "build-base-image: $TAG exists, nothing to do" >&2
  exit 0
fi

import_tarball() {
  # Same metadata as the official image: bash as the default command, the usual PATH.
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase made locally by docker/build-base-image.sh\"" \
    --message "debootstrap --variant=minbase $SUITE $MIRROR" \
    "$1" "$TAG" >/dev/null
  echo "build-base-image: imported $TAG from $1" >&2
}

if [ "${FORCE:-0}" != 1 ] && [ -s "$TARBALL" ]; then
  import_tarball "$TARBALL"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-base-image: debootstrap is missing (apt-get install debootstrap) and we are not root" >&2
    exit 1
  fi
  echo "build-base-image: installing debootstrap with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "build-base-image: debootstrap needs root" >&2
  exit 1
fi

mkdir -p "$CACHE_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/base-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
echo "build-base-image: debootstrap --variant=minbase $SUITE from $MIRROR (takes a few minutes)" >&2
start=$(date +%s)
if ! debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  tail -n 30 "$WORK/debootstrap.log" >&2
  tail -n 30 "$ROOT/debootstrap/debootstrap.log" 2>/dev/null >&2 || true
  exit 1
fi

# Trim like debian:*-slim (docker-library/debian's slimify): no docs, man pages or locales, now and
# for packages installed later; empty apt caches and logs.
mkdir -p "$ROOT/etc/dpkg/dpkg.cfg.d"
cat >"$ROOT/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
find "$ROOT/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$ROOT"/usr/share/{man,groff,info,lintian,linda}/* 2>/dev/null || true
find "$ROOT/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
       "$ROOT"/var/cache/ldconfig/aux-cache "$ROOT"/debootstrap
find "$ROOT/var/log" -type f -delete
# The official images' apt sources and no-cache settings, so `apt-get install` works in child images.
rm -f "$ROOT/etc/apt/sources.list"
mkdir -p "$ROOT/etc/apt/sources.list.d" "$ROOT/etc/apt/apt.conf.d"
cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
cat >"$ROOT/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
echo 'Acquire::Languages "none";' >"$ROOT/etc/apt/apt.conf.d/docker-no-languages"
: >"$ROOT/etc/hostname"
: >"$ROOT/etc/resolv.conf"
# Docker provides /dev, /proc and /sys at run time; keep only the mount points.
rm -rf "$ROOT"/dev/* "$ROOT"/proc/* "$ROOT"/sys/* "$ROOT"/tmp/* "$ROOT"/run/* 2>/dev/null || true

tar --numeric-owner --xattrs -C "$ROOT" -czf "$TARBALL.tmp" .
mv "$TARBALL.tmp" "$TARBALL"
echo "build-base-image: root made in $(( $(date +%s) - start ))s, cached at $TARBALL" >&2
import_tarball "$TARBALL"
