#!/usr/bin/env bash
# Installs the real clients the compatibility tests drive: kcat (librdkafka)
# from Debian and kafkajs from npm; and Prometheus (prometheus, promtool)
# from Debian for the dashboards tests. Idempotent; skips what is present.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v kcat >/dev/null 2>&1; then
	echo "installing kcat"
	sudo_if_needed apt-get update -qq
	sudo_if_needed apt-get install -y -qq kcat >/dev/null
fi

# Prometheus 2.42 and promtool, for the dashboards' alert-rule tests and the
# test that evaluates every panel against a real Prometheus.
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
	echo "installing prometheus"
	sudo_if_needed apt-get update -qq
	sudo_if_needed apt-get install -y -qq prometheus >/dev/null
fi

if [ ! -f compat/kafkajs/package.json ]; then
	:
elif command -v npm >/dev/null 2>&1; then
	if [ ! -d compat/kafkajs/node_modules/kafkajs ]; then
		echo "installing kafkajs"
		(cd compat/kafkajs && npm ci --no-audit --no-fund --loglevel=error)
	fi
else
	echo "npm not found: the kafkajs compatibility test will be skipped" >&2
fi

# The real Consul agent for the failover coordination-store tests: built once
# from tools/consul into .cache/consul/ (about 5 minutes on 2 cores), reused
# while tools/consul is unchanged. The Makefile's test-go target passes its
# path to the tests as KDR_CONSUL_BIN.
./scripts/consul.sh >/dev/null
