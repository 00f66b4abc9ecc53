#!/usr/bin/env bash
# Installs dray's dependencies on a fresh Debian machine: npm packages (including the pinned
# Node 24 toolchain) and the real components the integration tests and benchmarks talk to.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
command -v runc >/dev/null || need+=(runc)
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v openssl >/dev/null || need+=(openssl)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v setfattr >/dev/null || need+=(attr)
command -v zstd >/dev/null || need+=(zstd)
command -v tar >/dev/null || need+=(tar)
[ -x /usr/bin/time ] || need+=(time)
command -v pigz >/dev/null || need+=(pigz)
command -v curl >/dev/null || need+=(curl)
command -v bzip2 >/dev/null || need+=(bzip2)
command -v xz >/dev/null || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # Not `npm ci`: some registries serve only some of Biome's per-platform optional packages;
  # npm leaves the missing ones out of the lock file and `npm ci` then calls it out of sync.
  # `npm install` still installs exactly the locked versions.
  npm install --no-audit --no-fund --loglevel=error
fi
# The CLI bundle (dist/): bin/dray.js runs it while it matches the sources, else the sources.
node_modules/.bin/node scripts/bundle.ts >/dev/null
