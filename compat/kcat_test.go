package compat_test

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed (make test installs it with apt-get)")
	}
	return p
}

func runKcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(kcatPath(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestCompatKcatCodecsAndKeyOrder(t *testing.T) {
	kcatPath(t)
	proc := startBroker(t)
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			createTopic(t, proc.Addr(), topic, 3)
			want := keyedRecords(codec)
			var in strings.Builder
			for _, r := range want {
				fmt.Fprintf(&in, "%s|%s\n", r.Key, r.Value)
			}
			// librdkafka's default partitioner hashes keys (consistent_random).
			runKcat(t, in.String(), "-b", proc.Addr(), "-t", topic, "-P", "-K", "|", "-z", codec, "-X", "acks=all")
			out := runKcat(t, "", "-b", proc.Addr(), "-t", topic, "-C", "-e", "-q", "-f", "%p|%k|%s\n")
			var got []kv
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var p int32
				parts := strings.SplitN(line, "|", 3)
				if len(parts) != 3 {
					t.Fatalf("kcat output line %q", line)
				}
				fmt.Sscan(parts[0], &p)
				got = append(got, kv{parts[1], parts[2], p})
			}
			checkKeyed(t, "kcat", want, got)
			checkKeyed(t, "franz-go reading librdkafka's batches", want, readAllFranz(t, proc.Addr(), topic, len(want)))
		})
	}
}

func TestCompatKcatMetadataAndOffsetsForTimes(t *testing.T) {
	kcatPath(t)
	proc := startBroker(t)
	createTopic(t, proc.Addr(), "times", 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(proc.Addr()), kgo.DefaultProduceTopic("times"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctxT(t), &kgo.Record{Value: []byte{byte('0' + i)}, Timestamp: base.Add(time.Duration(i) * time.Minute)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	meta := runKcat(t, "", "-b", proc.Addr(), "-L")
	for _, want := range []string{"1 brokers:", "broker 1 at " + proc.Addr(), `topic "times" with 1 partitions:`} {
		if !strings.Contains(meta, want) {
			t.Fatalf("kcat -L output lacks %q:\n%s", want, meta)
		}
	}
	at := base.Add(4*time.Minute + 30*time.Second).UnixMilli()
	q := runKcat(t, "", "-b", proc.Addr(), "-Q", "-t", fmt.Sprintf("times:0:%d", at))
	if !strings.Contains(q, "offset 5") {
		t.Fatalf("kcat -Q for +4m30s should give offset 5:\n%s", q)
	}
}

type kcatMember struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startKcatMember(t *testing.T, addr, group, topic string, seen *valueSet) member {
	cmd := exec.Command(kcatPath(t), "-b", addr, "-G", group, topic, "-q", "-u", "-f", "%s\n",
		"-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=300", "-X", "auto.offset.reset=earliest",
		"-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=200", "-X", "fetch.wait.max.ms=200",
		"-X", "partition.assignment.strategy=range")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &kcatMember{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			seen.add(sc.Text())
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return m
}

// stop sends SIGTERM: kcat commits its offsets and leaves the group.
func (m *kcatMember) stop(t *testing.T) {
	m.cmd.Process.Signal(syscall.SIGTERM)
	<-m.done
	m.cmd.Wait()
}

func TestCompatKcatGroupRebalanceAndRestart(t *testing.T) {
	kcatPath(t)
	runGroupScenario(t, startKcatMember)
}
