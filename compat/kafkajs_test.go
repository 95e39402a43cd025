package compat_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// kafkajsDir is where `make test` installs kafkajs (npm ci).
func kafkajsDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node not installed")
	}
	dir, _ := filepath.Abs("kafkajs")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs")); err != nil {
		t.Skip("kafkajs not installed: run `make test-deps` (npm ci in compat/kafkajs)")
	}
	return dir
}

type jsLine struct {
	Key, Value string
	Partition  int32
	Produced   int
	Joined     bool
}

func TestCompatKafkaJSCodecsAndKeyOrder(t *testing.T) {
	dir := kafkajsDir(t)
	proc := startBroker(t)
	for _, codec := range []string{"none", "gzip"} { // kafkajs has only gzip built in
		t.Run(codec, func(t *testing.T) {
			topic := "kafkajs-" + codec
			createTopic(t, proc.Addr(), topic, 3)
			want := keyedRecords(codec)
			var in strings.Builder
			for _, r := range want {
				fmt.Fprintf(&in, "%s|%s\n", r.Key, r.Value)
			}
			prod := exec.Command("node", "compat.js", "produce", proc.Addr(), topic, codec)
			prod.Dir, prod.Stdin = dir, strings.NewReader(in.String())
			if out, err := prod.CombinedOutput(); err != nil || !strings.Contains(string(out), fmt.Sprintf(`"produced":%d`, len(want))) {
				t.Fatalf("kafkajs produce: %v\n%s", err, out)
			}
			cons := exec.Command("node", "compat.js", "consume", proc.Addr(), topic, fmt.Sprint(len(want)))
			cons.Dir = dir
			out, err := cons.Output()
			if err != nil {
				t.Fatalf("kafkajs consume: %v\n%s", err, out)
			}
			var got []kv
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				var l jsLine
				if err := json.Unmarshal([]byte(line), &l); err != nil {
					t.Fatalf("kafkajs output %q: %v", line, err)
				}
				got = append(got, kv{l.Key, l.Value, l.Partition})
			}
			// kafkajs's default partitioner is Java's murmur2, like
			// franz-go's sticky-key and sarama's hash differ; only the
			// per-key properties are checked, not which partition.
			checkKeyed(t, "kafkajs", want, got)
			checkKeyed(t, "franz-go reading kafkajs's batches", want, readAllFranz(t, proc.Addr(), topic, len(want)))
		})
	}
}

type kafkajsMember struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startKafkaJSMember(t *testing.T, addr, group, topic string, seen *valueSet) member {
	cmd := exec.Command("node", "compat.js", "member", addr, topic, group)
	cmd.Dir = kafkajsDir(t)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kafkajs member stderr:\n%s", stderr.String())
		}
	})
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &kafkajsMember{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var l jsLine
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Value != "" {
				seen.add(l.Value)
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return m
}

func (m *kafkajsMember) stop(t *testing.T) {
	m.cmd.Process.Signal(syscall.SIGTERM)
	<-m.done
	m.cmd.Wait()
}

func TestCompatKafkaJSGroupRebalanceAndRestart(t *testing.T) {
	kafkajsDir(t)
	runGroupScenario(t, startKafkaJSMember)
}
