package cli

import (
	"strings"
	"testing"
)

// TestBrokerDropBehindFlag: --log-drop-behind-bytes sets the config, and a
// value it cannot work with is refused naming the flags to change; so is a
// --cluster-id too long for a raft connection's preamble.
func TestBrokerDropBehindFlag(t *testing.T) {
	parse := func(args ...string) (*BrokerOptions, error) {
		var got *BrokerOptions
		err := parseTop(NewCmdBroker(IO{}, &globalOptions{}, func(o *BrokerOptions) error { got = o; return nil }), args...)
		return got, err
	}
	o, err := parse("--log-drop-behind-bytes", "67108864")
	if err != nil {
		t.Fatal(err)
	}
	if o.Config.LogDropBehindBytes != 64<<20 || o.Config.LogWritebackBytes != 1<<20 {
		t.Fatalf("drop-behind %d, writeback %d", o.Config.LogDropBehindBytes, o.Config.LogWritebackBytes)
	}
	if o, err = parse(); err != nil || o.Config.LogDropBehindBytes != 0 {
		t.Fatalf("default: %v, drop-behind %d; want off", err, o.Config.LogDropBehindBytes)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--log-drop-behind-bytes", "65536", "--log-writeback-bytes", "0"}, []string{"log.drop.behind.bytes=65536 needs early writeback", "--log-writeback-bytes"}},
		{[]string{"--log-drop-behind-bytes", "-1"}, []string{"log.drop.behind.bytes=-1", "--log-drop-behind-bytes"}},
		{[]string{"--cluster-id", strings.Repeat("x", 256)}, []string{"cluster id is 256 bytes long", "--cluster-id takes at most 255"}},
	} {
		_, err := parse(c.args...)
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %v, want it to contain %q", c.args, err, w)
			}
		}
	}
}
