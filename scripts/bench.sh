#!/usr/bin/env bash
# `make bench`: prints kdr's throughput next to a baseline measured in the
# same run, as a ratio. Figures only; it never fails because a figure is low.
#   1. storage: log append and read vs plain write(2)/pread(2) on one file, and
#      finding a tail fetch's range in memory vs from the batch headers;
#   1b. mirror: rewriting fetched batches (log append time, identity hops) vs
#      a plain copy of the batch;
#   2. broker: kdr vs franz-go's kfake, both as separate processes, driven by
#      the same franz-go workload (bench/kdrbench), with a raw-loopback ceiling;
#   3. cluster: three replicated kdr brokers (bench/clusterbench): RF=3 acks=all
#      vs RF=1 acks=1 throughput, acks=all latency, leader failover after
#      SIGKILL, creating 1,000 partitions, broker RSS;
#   3b. segment rolls: acks=all produce latency into a topic that rolls and
#      deletes a segment every second vs one that does not (bench/rollbench);
#   4. mirror: `kdr mirror run` vs a naive franz-go consume->produce pipe copying
#      the same preloaded backlog between two kdr clusters (bench/mirrorbench):
#      MB/s, CPU-s/GB, replication latency at half rate, mirror RSS under lag.
# BENCH_ARGS passes flags to kdrbench (e.g. BENCH_ARGS="--duration 30s"),
# CLUSTER_BENCH_ARGS to clusterbench (e.g. CLUSTER_BENCH_ARGS="--failovers 10"),
# ROLL_BENCH_ARGS to rollbench, MIRROR_BENCH_ARGS to mirrorbench (e.g. MIRROR_BENCH_ARGS="--records 10000000");
# BENCH_OUT=docs/benchmarks.md appends the broker, cluster and mirror reports there.
set -euo pipefail
cd "$(dirname "$0")/.."
KDR_BIN=${KDR_BIN:-bin/kdr}

echo "== storage (go test -bench, page cache) =="
go test -run '^$' -bench 'Append/plain$|Read$|Baseline|TailRead' -benchtime "${BENCH_TIME:-2s}" ./broker/storage |
	awk '/^Benchmark/ {
		name=$1; sub(/-[0-9]+$/, "", name)
		for (i=1;i<=NF;i++) { if ($i=="MB/s") mbps[name]=$(i-1); if ($i=="ns/op") ns[name]=$(i-1) }
		if (name ~ /TailRead/) printf "%-28s %10s ns/op\n", name, ns[name]
		else printf "%-28s %10s MB/s\n", name, mbps[name]
	}
	END {
		if (mbps["BenchmarkBaselineWrite"] > 0) printf "append / raw write(2):  %.2f\n", mbps["BenchmarkAppend/plain"] / mbps["BenchmarkBaselineWrite"]
		if (mbps["BenchmarkBaselineRead"] > 0)  printf "read   / raw pread(2):  %.2f\n", mbps["BenchmarkRead"] / mbps["BenchmarkBaselineRead"]
		if (ns["BenchmarkTailRead/tail"] > 0)   printf "tail read range, memory vs headers: %.1f× faster\n", ns["BenchmarkTailRead/file"] / ns["BenchmarkTailRead/tail"]
	}'

echo
echo "== mirror batch rewrites (go test -bench, in memory) =="
go test -run '^$' -bench 'LogAppendTimeToRaw|WithHops' -benchtime "${BENCH_TIME:-2s}" ./mirror |
	awk '/^Benchmark/ {
		name=$1; sub(/-[0-9]+$/, "", name)
		for (i=1;i<=NF;i++) if ($i=="MB/s") mbps[name]=$(i-1)
		printf "%-40s %10s MB/s\n", name, mbps[name]
	}
	END {
		r=mbps["BenchmarkLogAppendTimeToRaw/refetch"]
		if (r > 0) printf "log-append-time rewrite / memcpy of the batch: %.3f\n", mbps["BenchmarkLogAppendTimeToRaw/toRaw"] / r
	}'

echo
echo "== broker: kdr vs kfake (separate processes, same franz-go workload) =="
args=(--kdr-bin "$KDR_BIN" --out-dir bench/out)
if [ -n "${BENCH_OUT:-}" ]; then args+=(--out "$BENCH_OUT"); fi
# shellcheck disable=SC2086
go run ./bench/kdrbench "${args[@]}" ${BENCH_ARGS:-}

echo
echo "== cluster: 3 replicated kdr brokers (separate processes, same franz-go workload) =="
cargs=(--kdr-bin "$KDR_BIN" --out-dir bench/out)
if [ -n "${BENCH_OUT:-}" ]; then cargs+=(--out "$BENCH_OUT"); fi
# shellcheck disable=SC2086
go run ./bench/clusterbench "${cargs[@]}" ${CLUSTER_BENCH_ARGS:-}

echo
echo "== segment rolls: produce latency while segments roll and retention deletes them, vs not =="
rargs=(--kdr-bin "$KDR_BIN" --out-dir bench/out)
if [ -n "${BENCH_OUT:-}" ]; then rargs+=(--out "$BENCH_OUT"); fi
# shellcheck disable=SC2086
go run ./bench/rollbench "${rargs[@]}" ${ROLL_BENCH_ARGS:-}

echo
echo "== mirror: kdr mirror run vs a franz-go consume→produce pipe (two kdr clusters as processes) =="
margs=(--kdr-bin "$KDR_BIN" --out-dir bench/out)
if [ -n "${BENCH_OUT:-}" ]; then margs+=(--out "$BENCH_OUT"); fi
# shellcheck disable=SC2086
go run ./bench/mirrorbench "${margs[@]}" ${MIRROR_BENCH_ARGS:-}
