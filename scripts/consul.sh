#!/usr/bin/env bash
# Builds the real Consul agent from tools/consul (a separate Go module pinned
# to Consul v1.20.2) into .cache/consul/ and prints the binary's absolute path
# on stdout. The binary is named after a hash of tools/consul's go.mod, go.sum
# and main.go, so it is rebuilt only when they change; a present binary is
# reused without invoking go. Progress goes to stderr. The first build takes
# about 5 minutes on 2 cores.
#
#   KDR_CONSUL_BIN=$(./scripts/consul.sh) go test ./failover/...
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tools/consul"
cache="$root/.cache/consul"

hash="$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)"
bin="$cache/consul-$hash"

if [ ! -x "$bin" ]; then
	mkdir -p "$cache"
	echo "building consul agent into $bin (first build takes ~5 min)" >&2
	start=$(date +%s)
	tmp="$cache/.consul-$hash.$$"
	trap 'rm -f "$tmp"' EXIT
	# -mod=readonly: verify against the committed go.sum, never rewrite it.
	(cd "$src" && GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -ldflags="-s -w" -o "$tmp" .)
	mv -f "$tmp" "$bin"
	trap - EXIT
	# Older builds of other tools/consul revisions are no longer needed.
	find "$cache" -maxdepth 1 -name 'consul-*' ! -name "consul-$hash" -type f -delete
	echo "built consul in $(( $(date +%s) - start ))s" >&2
fi
echo "$bin"
