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
	./mirror/mm2:FuzzDecodeOffsetSync:20000 ./mirror/mm2:FuzzDecodeCheckpoint:20000 ./mirror/mm2:FuzzDecodeHeartbeat:20000 \
	./mirror:FuzzSplitBatches:20000

.PHONY: build run test test-deps test-go fuzz bench soak lint clean drills

# Builds to a temporary name and renames: bin/kdr may be running (kdr up,
# tests), and a running executable cannot be overwritten in place.
build:
	$(GO) build -o $(BIN).tmp . && mv -f $(BIN).tmp $(BIN)

# Runs the built-in demo topology (kdr up): clusters east (127.0.0.1:9092-9094)
# and west (127.0.0.1:19092-19094), three brokers each, east mirrored to west,
# and a demo producer. Ctrl-C stops everything; running it again resumes.
run: build
	./$(BIN) up

# Installs what the tests need (kcat, kafkajs), then runs vet, the race-enabled
# test suite and a short run of every fuzz target.
test: test-deps lint test-go fuzz

test-deps:
	./scripts/test-deps.sh

test-go: build
	consul=$$(./scripts/consul.sh) && KDR_BIN=$(CURDIR)/$(BIN) KDR_CONSUL_BIN=$$consul $(GO) test -race -timeout 20m ./...

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$$(( $${rest##*:} * $(FUZZ_SCALE) )); \
		echo "fuzz $$pkg $$name for $$n executions"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $${n}x $$pkg || exit 1; \
	done

# Prints throughput figures side by side with baselines; never fails on timings.
bench: build
	./scripts/bench.sh

# Long failure runs: the leader-kill checker with many more kills (prints the
# checker's report: lost, duplicated, reordered, longest unavailability), and
# the orchestrator crashed after every switchover step with the Consul store.
SOAK_KILLS ?= 200
soak: build
	KDR_BIN=$(CURDIR)/$(BIN) KDR_KILLS=$(SOAK_KILLS) $(GO) test -v -count=1 -timeout 3h -run 'TestBrokerClusterCheckerSurvivesLeaderKills' ./broker
	consul=$$(./scripts/consul.sh) && KDR_BIN=$(CURDIR)/$(BIN) KDR_CONSUL_BIN=$$consul KDR_CONSUL_CRASH_ALL_STEPS=1 \
		$(GO) test -v -count=1 -timeout 30m -run 'TestFailoverSwitchoverCrashAtEveryStep' ./failover

# Runs every drill scenario (scenarios/*.yaml) against bin/kdr; reports go to
# drills-out/<scenario>/report.{json,html}. Fails if any scenario fails.
drills: build
	@fail=0; for s in scenarios/*.yaml; do n=$$(basename $$s .yaml); \
		./$(BIN) drill run $$s --report-dir drills-out/$$n --log-level warn || fail=1; \
	done; exit $$fail

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
