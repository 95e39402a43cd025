package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

type jsonProduceSummary struct {
	Topic      string `json:"topic"`
	Records    int    `json:"records"`
	Failed     int    `json:"failed"`
	Partitions []struct {
		Partition  int32 `json:"partition"`
		Records    int   `json:"records"`
		LastOffset int64 `json:"last_offset"`
	} `json:"partitions"`
}

type jsonRecord struct {
	Topic       string  `json:"topic"`
	Partition   int32   `json:"partition"`
	Offset      int64   `json:"offset"`
	TimestampMs int64   `json:"timestamp_ms"`
	Key         *string `json:"key"`
	Value       *string `json:"value"`
	Headers     []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"headers"`
}

// keyedLines returns n lines "k<i>:v<i>\n" and the records they become
// printed as "k<i>=v<i>", sorted.
func keyedLines(n int) (input string, printed []string) {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "k%d:v%d\n", i, i)
		printed = append(printed, fmt.Sprintf("k%d=v%d", i, i))
	}
	slices.Sort(printed)
	return b.String(), printed
}

// sortedLines splits output into lines and sorts them: records of
// different partitions may arrive in any order.
func sortedLines(out string) []string {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	slices.Sort(lines)
	return lines
}

func TestProduceConsume(t *testing.T) {
	b := kdrtest.StartBroker(t)
	addr := b.Addr()
	mustKdr(t, addr, "", "topic", "create", "orders", "--partitions", "3")

	input, want := keyedLines(10)
	r := runKdr(t, addr, input, "produce", "orders", "--key-separator", ":", "--output", "json")
	if r.code != exitOK {
		t.Fatalf("produce: exit %d, stderr %s", r.code, r.stderr)
	}
	sum := decodeJSON[jsonProduceSummary](t, r.stderr)
	total := 0
	for _, p := range sum.Partitions {
		total += p.Records
		if p.LastOffset != int64(p.Records-1) {
			t.Errorf("partition %d: %d records, last offset %d; want %d on a new topic", p.Partition, p.Records, p.LastOffset, p.Records-1)
		}
	}
	if sum.Topic != "orders" || sum.Records != 10 || sum.Failed != 0 || total != 10 || len(sum.Partitions) < 2 {
		t.Errorf("produce summary: %+v (10 keys should spread over the 3 partitions)", sum)
	}

	out := mustKdr(t, addr, "", "consume", "orders", "--from-beginning", "--max-messages", "10", "--format", `%k=%v\n`)
	if got := sortedLines(out); !slices.Equal(got, want) {
		t.Errorf("consume --from-beginning:\ngot  %q\nwant %q", got, want)
	}

	// Records of one key land in one partition, in order; read one
	// partition from an offset as JSON.
	p := sum.Partitions[0]
	out = mustKdr(t, addr, "", "consume", "orders", "--partition", fmt.Sprint(p.Partition), "--offset", "1",
		"--max-messages", fmt.Sprint(p.Records-1), "--output", "json")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != p.Records-1 {
		t.Fatalf("consume --partition %d --offset 1: %d lines, want %d:\n%s", p.Partition, len(lines), p.Records-1, out)
	}
	for i, line := range lines {
		rec := decodeJSON[jsonRecord](t, line)
		if rec.Topic != "orders" || rec.Partition != p.Partition || rec.Offset != int64(i+1) || rec.Key == nil || rec.Value == nil ||
			strings.TrimPrefix(*rec.Key, "k") != strings.TrimPrefix(*rec.Value, "v") || rec.TimestampMs <= 0 {
			t.Errorf("record %d: %+v", i, rec)
		}
	}

	// One key, a fixed partition, headers, compression and acks=1.
	r = runKdr(t, addr, "a\nb\n", "produce", "orders", "--key", "K", "--partition", "2", "--header", "h=1", "--header", "h=2",
		"--compression", "gzip", "--acks", "1")
	if r.code != exitOK || !strings.Contains(r.stderr, "Produced 2 record(s) to topic orders") {
		t.Fatalf("produce --partition 2: exit %d, stderr %s", r.code, r.stderr)
	}
	end := 0
	for _, sp := range sum.Partitions {
		if sp.Partition == 2 {
			end = sp.Records
		}
	}
	out = mustKdr(t, addr, "", "consume", "orders", "--partition", "2", "--offset", fmt.Sprint(end), "--max-messages", "2",
		"--format", `%t %p %o %k [%h] %v\n`)
	if wantOut := fmt.Sprintf("orders 2 %d K [h=1,h=2] a\norders 2 %d K [h=1,h=2] b\n", end, end+1); out != wantOut {
		t.Errorf("consume the keyed records:\ngot  %q\nwant %q", out, wantOut)
	}

	// --idle-timeout ends a consume that has nothing more to read.
	out = mustKdr(t, addr, "", "consume", "orders", "--idle-timeout", "300ms")
	if out != "" {
		t.Errorf("consume from the end printed %q", out)
	}
}

func TestProduceErrors(t *testing.T) {
	b := kdrtest.StartBroker(t)
	addr := b.Addr()
	mustKdr(t, addr, "", "topic", "create", "t", "--partitions", "1")

	// A line without the separator fails alone; the others are written.
	r := runKdr(t, addr, "a:1\nno-separator\nb:2", "produce", "t", "--key-separator", ":")
	if r.code != exitError {
		t.Errorf("produce with a bad line: exit %d, want %d", r.code, exitError)
	}
	for _, s := range []string{"line 2", `no key separator ":"`, "Produced 2 record(s)", "1 of 3 records"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
	if out := mustKdr(t, addr, "", "consume", "t", "--from-beginning", "--max-messages", "2", "--format", `%k=%v\n`); out != "a=1\nb=2\n" {
		t.Errorf("consume after partial produce: %q", out)
	}

	r = runKdr(t, addr, "x\n", "produce", "missing")
	if r.code != exitError || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") || !strings.Contains(r.stderr, "kdr topic create missing") {
		t.Errorf("produce to a missing topic: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runKdr(t, addr, "x\n", "produce", "t", "--partition", "5")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--partition 5") {
		t.Errorf("produce to a missing partition: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestConsumeExitAtEnd: --exit-at-end (kcat -e) reads what each partition
// held when the command started and stops, while a producer keeps writing:
// with --idle-timeout alone such a read never ends. From the end, or with a
// group already at the end, there is nothing to read and it stops at once.
func TestConsumeExitAtEnd(t *testing.T) {
	b := kdrtest.StartBroker(t)
	addr := b.Addr()
	mustKdr(t, addr, "", "topic", "create", "orders", "--partitions", "3")
	input, want := keyedLines(30)
	if r := runKdr(t, addr, input, "produce", "orders", "--key-separator", ":"); r.code != exitOK {
		t.Fatalf("produce: exit %d, %s", r.code, r.stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	done := make(chan struct{})
	go func() { // a producer that keeps writing
		defer close(done)
		for ctx.Err() == nil {
			cl.ProduceSync(ctx, &kgo.Record{Key: []byte("later"), Value: []byte("later")})
		}
	}()
	defer func() { cancel(); <-done }()

	out := mustKdr(t, addr, "", "consume", "orders", "--from-beginning", "--exit-at-end", "--format", `%k=%v\n`)
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if l != "later=later" {
			got = append(got, l)
		}
	}
	if slices.Sort(got); !slices.Equal(got, want) {
		t.Errorf("--from-beginning --exit-at-end read %d of the first records, want all %d once:\n%q", len(got), len(want), got)
	}
	if out := mustKdr(t, addr, "", "consume", "orders", "--exit-at-end"); out != "" {
		t.Errorf("--exit-at-end from the end printed %q", out)
	}
	// A group: read to the end, then again from where it committed (both
	// stop while the producer writes on).
	first := mustKdr(t, addr, "", "consume", "orders", "--group", "g", "--from-beginning", "--exit-at-end", "--format", `%k\n`)
	if n := strings.Count(first, "\n"); n < len(want) {
		t.Errorf("the group read %d records to the end, want at least %d", n, len(want))
	}
	mustKdr(t, addr, "", "consume", "orders", "--group", "g", "--exit-at-end")
}
