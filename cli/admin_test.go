package cli

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testIO is the streams of a command whose run is replaced by a hook.
func testIO() IO { return IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard} }

// wantUsageError fails unless err is a usageError whose message contains
// every one of parts.
func wantUsageError(t *testing.T, err error, parts ...string) {
	t.Helper()
	var ue usageError
	if !errors.As(err, &ue) {
		t.Fatalf("got error %v (%T), want a usage error", err, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestAdminConnDefaults(t *testing.T) {
	var got *TopicListOptions
	err := parseWith(NewCmdTopicList(testIO(), &globalOptions{LogLevel: "info", LogFormat: "text"}, func(o *TopicListOptions) error { got = o; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	want := ConnOptions{Brokers: []string{"127.0.0.1:9092"}, Output: outputText, Timeout: 30 * time.Second}
	got.Conn.log = nil
	if !reflect.DeepEqual(got.Conn, want) || got.Internal {
		t.Errorf("got %+v internal=%v, want %+v internal=false", got.Conn, got.Internal, want)
	}
}

func TestAdminConnFromEnvAndFlags(t *testing.T) {
	t.Setenv("KDR_BROKERS", "a:1, b:2")
	t.Setenv("KDR_OUTPUT", "json")
	t.Setenv("KDR_TIMEOUT", "5s")
	var got *TopicListOptions
	run := func(o *TopicListOptions) error { got = o; return nil }
	if err := parseWith(NewCmdTopicList(testIO(), nil, run), "--internal"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a:1", "b:2"}; !reflect.DeepEqual(got.Conn.Brokers, want) || got.Conn.Output != outputJSON || got.Conn.Timeout != 5*time.Second || !got.Internal {
		t.Errorf("from env: got %+v internal=%v", got.Conn, got.Internal)
	}
	// Flags win over the environment.
	if err := parseWith(NewCmdTopicList(testIO(), nil, run), "--brokers", "c:3", "--output", "text", "--timeout", "1m"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"c:3"}; !reflect.DeepEqual(got.Conn.Brokers, want) || got.Conn.Output != outputText || got.Conn.Timeout != time.Minute {
		t.Errorf("flags over env: got %+v", got.Conn)
	}
}

func TestAdminConnInvalid(t *testing.T) {
	never := func(*TopicListOptions) error { t.Error("runF called for invalid options"); return nil }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--output", "yaml"}, `--output "yaml"`},
		{[]string{"--brokers", " , "}, "--brokers is empty"},
		{[]string{"--brokers", "localhost"}, `"localhost" is not host:port`},
		{[]string{"--timeout", "0s"}, "--timeout must be positive"},
	} {
		wantUsageError(t, parseWith(NewCmdTopicList(testIO(), nil, never), tc.args...), tc.want)
	}
}

func TestTopicCreateOptions(t *testing.T) {
	var got *TopicCreateOptions
	err := parseWith(NewCmdTopicCreate(testIO(), nil, func(o *TopicCreateOptions) error { got = o; return nil }),
		"orders", "--partitions", "6", "--replication-factor", "3", "--config", "retention.ms=1000",
		"--config", "cleanup.policy=compact,delete", "--config", "message.format=a=b", "--if-not-exists")
	if err != nil {
		t.Fatal(err)
	}
	wantConfigs := []keyValue{{"retention.ms", "1000"}, {"cleanup.policy", "compact,delete"}, {"message.format", "a=b"}}
	if got.Topic != "orders" || got.Partitions != 6 || got.ReplicationFactor != 3 || !got.IfNotExists || !reflect.DeepEqual(got.Configs, wantConfigs) {
		t.Errorf("got %+v", got)
	}

	if err := parseWith(NewCmdTopicCreate(testIO(), nil, func(o *TopicCreateOptions) error { got = o; return nil }), "t"); err != nil {
		t.Fatal(err)
	}
	if got.Partitions != -1 || got.ReplicationFactor != -1 || len(got.Configs) != 0 || got.IfNotExists {
		t.Errorf("defaults: got %+v", got)
	}
}

func TestTopicCreateInvalidOptions(t *testing.T) {
	never := func(*TopicCreateOptions) error { t.Error("runF called for invalid options"); return nil }
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"t", "--config", "retention.ms"}, []string{"--config", `"retention.ms"`, "key=value"}},
		{[]string{"t", "--config", "=5"}, []string{`"=5"`}},
		{[]string{"t", "--config", "a=1", "--config", "a=2"}, []string{`"a" given twice`}},
		{[]string{"t", "--partitions", "0"}, []string{"--partitions 0"}},
		{[]string{"t", "--replication-factor", "-2"}, []string{"--replication-factor -2"}},
		{[]string{}, []string{"one topic name", "got 0"}},
		{[]string{"a", "b"}, []string{"got 2"}},
		{[]string{"t", "--partitions", "x"}, []string{"invalid argument"}},
	} {
		wantUsageError(t, parseWith(NewCmdTopicCreate(testIO(), nil, never), tc.args...), tc.want...)
	}
}

func TestTopicAlterConfigOptions(t *testing.T) {
	var got *TopicAlterConfigOptions
	run := func(o *TopicAlterConfigOptions) error { got = o; return nil }
	if err := parseWith(NewCmdTopicAlterConfig(testIO(), nil, run), "orders", "--set", "retention.ms=5", "--delete", "cleanup.policy", "--dry-run"); err != nil {
		t.Fatal(err)
	}
	if got.Topic != "orders" || !reflect.DeepEqual(got.Set, []keyValue{{"retention.ms", "5"}}) ||
		!reflect.DeepEqual(got.Delete, []string{"cleanup.policy"}) || !got.DryRun {
		t.Errorf("got %+v", got)
	}
	never := func(*TopicAlterConfigOptions) error { t.Error("runF called for invalid options"); return nil }
	wantUsageError(t, parseWith(NewCmdTopicAlterConfig(testIO(), nil, never), "orders"), "nothing to change")
	wantUsageError(t, parseWith(NewCmdTopicAlterConfig(testIO(), nil, never), "orders", "--set", "retention.ms"), `invalid --set "retention.ms"`)
	wantUsageError(t, parseWith(NewCmdTopicAlterConfig(testIO(), nil, never), "orders", "--delete", "a=b"), `invalid --delete "a=b"`)
	wantUsageError(t, parseWith(NewCmdTopicAlterConfig(testIO(), nil, never), "orders", "--set", "a=1", "--delete", "a"), `"a" is both set and deleted`)
}

func TestTopicDescribeDeleteOptions(t *testing.T) {
	var d *TopicDescribeOptions
	if err := parseWith(NewCmdTopicDescribe(testIO(), nil, func(o *TopicDescribeOptions) error { d = o; return nil }), "a", "b", "--all-configs"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.Topics, []string{"a", "b"}) || !d.AllConfigs {
		t.Errorf("describe: got %+v", d)
	}
	var del *TopicDeleteOptions
	if err := parseWith(NewCmdTopicDelete(testIO(), nil, func(o *TopicDeleteOptions) error { del = o; return nil }), "a", "--if-exists"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(del.Topics, []string{"a"}) || !del.IfExists {
		t.Errorf("delete: got %+v", del)
	}
	wantUsageError(t, parseWith(NewCmdTopicDelete(testIO(), nil, nil)), "one or more topic names")
}

func TestGroupResetOffsetsOptions(t *testing.T) {
	var got *GroupResetOffsetsOptions
	run := func(o *GroupResetOffsetsOptions) error { got = o; return nil }
	for _, tc := range []struct {
		args  []string
		reset resetSpec
	}{
		{[]string{"--to-earliest"}, resetSpec{Mode: resetEarliest}},
		{[]string{"--to-latest"}, resetSpec{Mode: resetLatest}},
		{[]string{"--to-offset", "0"}, resetSpec{Mode: resetOffset, Offset: 0}},
		{[]string{"--to-offset", "42"}, resetSpec{Mode: resetOffset, Offset: 42}},
		{[]string{"--shift-by", "-3"}, resetSpec{Mode: resetShiftBy, Offset: -3}},
		{[]string{"--to-datetime", "2024-05-01T12:00:00+02:00"}, resetSpec{Mode: resetDatetime, Time: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}},
	} {
		args := append([]string{"billing", "--topic", "orders", "--topic", "pay:0,2"}, tc.args...)
		if err := parseWith(NewCmdGroupResetOffsets(testIO(), nil, run), args...); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		wantTopics := []topicPartitions{{Topic: "orders"}, {Topic: "pay", Partitions: []int32{0, 2}}}
		if got.Group != "billing" || !reflect.DeepEqual(got.Topics, wantTopics) || got.AllTopics || got.Execute {
			t.Errorf("%v: got %+v", tc.args, got)
		}
		if got.Reset.Mode != tc.reset.Mode || got.Reset.Offset != tc.reset.Offset || !got.Reset.Time.Equal(tc.reset.Time) {
			t.Errorf("%v: got reset %+v, want %+v", tc.args, got.Reset, tc.reset)
		}
	}
	if err := parseWith(NewCmdGroupResetOffsets(testIO(), nil, run), "g", "--all-topics", "--to-latest", "--execute"); err != nil {
		t.Fatal(err)
	}
	if !got.AllTopics || len(got.Topics) != 0 || !got.Execute {
		t.Errorf("--all-topics --execute: got %+v", got)
	}
}

func TestGroupResetOffsetsInvalidOptions(t *testing.T) {
	never := func(*GroupResetOffsetsOptions) error { t.Error("runF called for invalid options"); return nil }
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"g", "--topic", "t", "--to-earliest", "--to-latest"}, []string{"--to-earliest and --to-latest cannot be combined"}},
		{[]string{"g", "--topic", "t", "--to-offset", "5", "--shift-by", "1"}, []string{"--to-offset and --shift-by"}},
		{[]string{"g", "--topic", "t"}, []string{"give one of --to-earliest"}},
		{[]string{"g", "--to-earliest"}, []string{"--topic", "--all-topics"}},
		{[]string{"g", "--topic", "t", "--all-topics", "--to-earliest"}, []string{"either --topic"}},
		{[]string{"g", "--topic", "t:x", "--to-earliest"}, []string{`invalid --topic "t:x"`, `partition "x"`}},
		{[]string{"g", "--topic", ":1", "--to-earliest"}, []string{`invalid --topic ":1"`}},
		{[]string{"g", "--topic", "t", "--to-datetime", "yesterday"}, []string{`invalid --to-datetime "yesterday"`, "RFC 3339"}},
		{[]string{"g", "--topic", "t", "--to-offset", "-1"}, []string{"--to-offset -1"}},
	} {
		wantUsageError(t, parseWith(NewCmdGroupResetOffsets(testIO(), nil, never), tc.args...), tc.want...)
	}
}

func TestGroupListDescribeOptions(t *testing.T) {
	var d *GroupDescribeOptions
	if err := parseWith(NewCmdGroupDescribe(testIO(), nil, func(o *GroupDescribeOptions) error { d = o; return nil }), "a", "b", "--output", "json"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d.Groups, []string{"a", "b"}) || d.Conn.Output != outputJSON {
		t.Errorf("describe: got %+v", d)
	}
	called := false
	if err := parseWith(NewCmdGroupList(testIO(), nil, func(*GroupListOptions) error { called = true; return nil })); err != nil || !called {
		t.Errorf("list: err %v, called %v", err, called)
	}
	wantUsageError(t, parseWith(NewCmdGroupList(testIO(), nil, nil), "extra"), "no arguments")
}

func TestProduceOptions(t *testing.T) {
	var got *ProduceOptions
	run := func(o *ProduceOptions) error { got = o; return nil }
	if err := parseTop(NewCmdProduce(testIO(), nil, run), "orders", "--key", "", "--partition", "2", "--acks", "1",
		"--compression", "zstd", "--header", "a=1", "--header", "a=2", "--brokers", "x:1"); err != nil {
		t.Fatal(err)
	}
	if got.Topic != "orders" || got.Key == nil || *got.Key != "" || got.Partition != 2 || got.Acks != "1" || got.Compression != "zstd" ||
		!reflect.DeepEqual(got.Headers, []keyValue{{"a", "1"}, {"a", "2"}}) || !reflect.DeepEqual(got.Conn.Brokers, []string{"x:1"}) {
		t.Errorf("got %+v", got)
	}
	if err := parseTop(NewCmdProduce(testIO(), nil, run), "orders", "--key-separator", ":"); err != nil {
		t.Fatal(err)
	}
	if got.Key != nil || got.KeySeparator != ":" || got.Partition != -1 || got.Acks != "all" || got.Compression != "none" {
		t.Errorf("defaults: got %+v", got)
	}
	never := func(*ProduceOptions) error { t.Error("runF called for invalid options"); return nil }
	wantUsageError(t, parseTop(NewCmdProduce(testIO(), nil, never), "t", "--key", "k", "--key-separator", ":"), "--key and --key-separator")
	wantUsageError(t, parseTop(NewCmdProduce(testIO(), nil, never), "t", "--acks", "2"), `--acks "2"`)
	wantUsageError(t, parseTop(NewCmdProduce(testIO(), nil, never), "t", "--compression", "brotli"), `--compression "brotli"`)
	wantUsageError(t, parseTop(NewCmdProduce(testIO(), nil, never), "t", "--header", "novalue"), `invalid --header "novalue"`)
}

func TestConsumeOptions(t *testing.T) {
	var got *ConsumeOptions
	run := func(o *ConsumeOptions) error { got = o; return nil }
	if err := parseTop(NewCmdConsume(testIO(), nil, run), "orders", "--group", "g", "--from-beginning", "--max-messages", "10",
		"--idle-timeout", "3s", "--format", `%p:%o %k=%v\n`); err != nil {
		t.Fatal(err)
	}
	if got.Topic != "orders" || got.Group != "g" || !got.FromBeginning || got.MaxMessages != 10 || got.IdleTimeout != 3*time.Second ||
		got.Partition != -1 || got.Offset != -1 || got.Format != `%p:%o %k=%v\n` || len(got.format) == 0 {
		t.Errorf("got %+v", got)
	}
	if err := parseTop(NewCmdConsume(testIO(), nil, run), "orders", "--partition", "1", "--offset", "7"); err != nil {
		t.Fatal(err)
	}
	if got.Partition != 1 || got.Offset != 7 || got.Format != defaultRecordFormat {
		t.Errorf("partition/offset: got %+v", got)
	}
	never := func(*ConsumeOptions) error { t.Error("runF called for invalid options"); return nil }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"t", "--offset", "3"}, "--offset needs --partition"},
		{[]string{"t", "--partition", "0", "--offset", "3", "--from-beginning"}, "--offset and --from-beginning"},
		{[]string{"t", "--partition", "0", "--group", "g"}, "--partition cannot be used with --group"},
		{[]string{"t", "--max-messages", "-1"}, "--max-messages -1"},
		{[]string{"t", "--format", "%x"}, "unknown verb %x"},
		{[]string{"t", "--format", "%v", "--output", "json"}, "--format applies to --output text"},
	} {
		wantUsageError(t, parseTop(NewCmdConsume(testIO(), nil, never), tc.args...), tc.want)
	}
}

// TestAdminUsageExitCode checks that option errors of the client commands
// reach Execute as usage errors (exit code 2) with a message on stderr.
func TestAdminUsageExitCode(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Execute([]string{"topic", "create", "t", "--config", "bad"}, strings.NewReader(""), &out, &errOut)
	if code != exitUsage || !strings.Contains(errOut.String(), `invalid --config "bad"`) {
		t.Errorf("exit %d, stderr %q; want exit %d naming the bad --config", code, errOut.String(), exitUsage)
	}
	errOut.Reset()
	code = Execute([]string{"group", "reset-offsets", "g", "--topic", "t", "--to-earliest", "--to-latest"}, strings.NewReader(""), &out, &errOut)
	if code != exitUsage || !strings.Contains(errOut.String(), "cannot be combined") {
		t.Errorf("exit %d, stderr %q; want exit %d for exclusive reset flags", code, errOut.String(), exitUsage)
	}
}
