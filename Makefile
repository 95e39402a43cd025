# kdr — see README.md. `make run` and `make test` are the two commands a newcomer needs.
GO        ?= go
BIN       := bin/kdr
# Fuzz targets run briefly by `make test`, as package:target:executions. Counts, not
# durations: a duration that expires mid-input makes `go test -fuzz` fail with
# "context deadline exceeded" on a slow machine. Run longer with e.g. FUZZ_SCALE=20.
FUZZ_SCALE ?= 1
FUZZ_TARGETS := ./broker/wire:FuzzRequest:20000 ./broker:FuzzBrokerHandlers:20000 \
	./broker/storage:FuzzRecover:2000 ./broker/storage:FuzzRecoverMetadata:2000 ./broker/storage:FuzzAppend:2000 \
	./broker/group:FuzzGroupReplay:20000 \
	./mirror/mm2:FuzzDecodeOffsetSync:20000 ./mirror/mm2:FuzzDecodeCheckpoint:20000 ./mirror/mm2:FuzzDecodeHeartbeat:20000

.PHONY: build run test test-deps test-go fuzz bench soak lint clean

build:
	$(GO) build -o $(BIN) .

# Runs a single broker on 127.0.0.1:9092 with data in ./kdr-data and metrics on :9644.
run: build
	./$(BIN) broker --data-dir ./kdr-data --listen 127.0.0.1:9092 --node-id 1

# Installs what the tests need (kcat, kafkajs), then runs vet, the race-enabled
# test suite and a short run of every fuzz target.
test: test-deps lint test-go fuzz

test-deps:
	./scripts/test-deps.sh

test-go: build
	KDR_BIN=$(CURDIR)/$(BIN) $(GO) test -race -timeout 20m ./...

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$$(( $${rest##*:} * $(FUZZ_SCALE) )); \
		echo "fuzz $$pkg $$name for $$n executions"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $${n}x $$pkg || exit 1; \
	done

# Prints throughput figures side by side with baselines; never fails on timings.
bench: build
	./scripts/bench.sh

# Long failure runs: the leader-kill checker with many more kills. Prints the
# checker's report (lost, duplicated, reordered, longest unavailability).
SOAK_KILLS ?= 200
soak: build
	KDR_BIN=$(CURDIR)/$(BIN) KDR_KILLS=$(SOAK_KILLS) $(GO) test -v -count=1 -timeout 3h -run 'TestBrokerClusterCheckerSurvivesLeaderKills' ./broker

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin kdr-data
