package broker

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/broker/wire"
)

// FuzzBrokerHandlers decodes arbitrary requests (2-byte key, 2-byte version,
// body) for every registered API and version and hands them to the real
// handlers of a running broker. No input may panic, and every response must
// encode. Requests that would create unbounded resources are capped, the way
// a quota would.
func FuzzBrokerHandlers(f *testing.F) {
	cfg := DefaultConfig()
	cfg.DataDir = f.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.MetricsListen = ""
	cfg.Group.InitialRebalanceDelay = 0
	cfg.Group.OffsetsTopicPartitions = 2
	b, err := Start(cfg, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	for _, key := range b.apis.Keys() {
		api, _ := b.apis.Lookup(key)
		for _, v := range []int16{api.MinVersion, api.MaxVersion} {
			req := kmsg.RequestForKey(key)
			req.SetVersion(v)
			f.Add(append(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, uint16(key)), uint16(v)), req.AppendTo(nil)...))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		key, version := int16(binary.BigEndian.Uint16(data)), int16(binary.BigEndian.Uint16(data[2:]))
		api, ok := b.apis.Lookup(key)
		if !ok || version < api.MinVersion || version > api.MaxVersion {
			return
		}
		req := kmsg.RequestForKey(key)
		req.SetVersion(version)
		if kmsgTagLoopHazard(data) || req.ReadFrom(data[4:]) != nil || tooBig(req) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		resp, err := api.Handle(ctx, &wire.Request{Key: key, Version: version, Msg: req, Received: time.Now()})
		if err != nil {
			return // the connection would be closed; the broker lives on
		}
		if resp != nil {
			resp.AppendTo(nil)
		}
	})
}

// tooBig skips requests that would legitimately take the fuzzer's disk or
// time: many new partitions, or long waits.
func tooBig(req kmsg.Request) bool {
	switch r := req.(type) {
	case *kmsg.CreateTopicsRequest:
		for _, t := range r.Topics {
			if t.NumPartitions > 4 || len(t.ReplicaAssignment) > 4 {
				return true
			}
		}
		return len(r.Topics) > 4
	case *kmsg.CreatePartitionsRequest:
		for _, t := range r.Topics {
			if t.Count > 8 {
				return true
			}
		}
	case *kmsg.JoinGroupRequest:
		return r.RebalanceTimeoutMillis > 200 || r.SessionTimeoutMillis > 200
	}
	return false
}

// kmsgTagLoopHazard reports inputs with a uvarint of four or more bytes:
// kmsg's body decoders loop once per declared tag even past the end of the
// input, so a huge tag count costs up to a minute of CPU in the dependency
// (documented in docs/broker.md); the fuzzer would only report it as a hang.
func kmsgTagLoopHazard(b []byte) bool {
	run := 0
	for _, c := range b {
		if run = (run + 1) * int(c>>7); run >= 3 {
			return true
		}
	}
	return false
}
