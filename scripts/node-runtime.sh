#!/usr/bin/env bash
# Prints the folder of an official Node.js runtime (bin/node, include/node) for one architecture and major version,
# fetched once from the npm registry's node-linux-<arch> package (npm checks the tarball against the registry's
# integrity hash) and kept in .runtimes/. The test suite runs on each supported major; npm run package builds native
# code against, and may bundle, the device's runtime.
#
#   scripts/node-runtime.sh <x64|arm64> <22|24>
#
# The exact versions are pinned here, in one place.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

arch="${1:-}"
major="${2:-}"
case "$arch" in x64 | arm64) ;; *) echo "node-runtime.sh: architecture must be x64 or arm64, not '$arch'" >&2; exit 2 ;; esac
case "$major" in
  22) version=22.23.5 ;;
  24) version=24.22.3 ;;
  *) echo "node-runtime.sh: Node major must be 22 or 24 (the supported runtimes), not '$major'" >&2; exit 2 ;;
esac

dir="$root/.runtimes/node-v$version-linux-$arch"
if [ ! -x "$dir/bin/node" ] || [ ! -f "$dir/include/node/node_version.h" ]; then
  mkdir -p "$root/.runtimes"
  tmp="$(mktemp -d "$root/.runtimes/tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && npm pack --loglevel=error "node-linux-$arch@$version" >pack.out 2>pack.err); then
    # One line: npm's own reason (e.g. "404 Not Found - GET ..." or "FetchError: ... ECONNREFUSED"), else its code.
    why=$(grep -E '^npm error ' "$tmp/pack.err" | grep -vE '^npm error (code|syscall|errno) ' | head -n 1 | sed 's/^npm error //')
    [ -n "$why" ] || why=$(grep -m 1 -E '^npm error code ' "$tmp/pack.err" | sed 's/^npm error //')
    echo "node-runtime.sh: could not fetch node-linux-$arch@$version from the npm registry: ${why:-npm pack failed and said nothing}" >&2
    exit 1
  fi
  mkdir -p "$tmp/x"
  tar -xzf "$tmp/$(tail -n 1 "$tmp/pack.out")" -C "$tmp/x"
  rm -rf "$dir"
  mv "$tmp/x/package" "$dir"
fi
echo "$dir"
