package cli

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestConsumeFormat(t *testing.T) {
	r := &kgo.Record{
		Topic: "orders", Partition: 2, Offset: 41, Key: []byte("k1"), Value: []byte("v1"),
		Timestamp: time.UnixMilli(1700000000123),
		Headers:   []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}},
	}
	for _, tc := range []struct{ format, want string }{
		{defaultRecordFormat, "v1\n"},
		{`%k\t%v\n`, "k1\tv1\n"},
		{`%t/%p@%o %T [%h] 100%% \\ \r`, "orders/2@41 1700000000123 [a=1,b=2] 100% \\ \r"},
		{"plain", "plain"},
		{"", ""},
	} {
		f, err := parseRecordFormat(tc.format)
		if err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if got := string(f.appendRecord(nil, r)); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.format, got, tc.want)
		}
	}
}

func TestConsumeFormatInvalid(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{"%x", "unknown verb %x"},
		{`\q`, `unknown escape \q`},
		{"50%", "lone %"},
		{`a\`, `lone \`},
	} {
		_, err := parseRecordFormat(tc.format)
		wantUsageError(t, err, tc.want)
	}
}

func TestConsumeRecordJSON(t *testing.T) {
	r := &kgo.Record{Topic: "orders", Partition: 1, Offset: 7, Value: []byte("v"), Timestamp: time.UnixMilli(5),
		Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("x")}}}
	got, err := appendRecordJSON(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"topic":"orders","partition":1,"offset":7,"timestamp_ms":5,"key":null,"value":"v","headers":[{"key":"h","value":"x"}]}` + "\n"
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
