package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testServer serves a small registry: ApiVersions, Metadata (empty answer),
// Produce (no answer for acks=0) and DeleteGroups, whose handler panics, to
// exercise the connection layer through real TCP.
func testServer(t *testing.T, cfg Config) (addr string) {
	t.Helper()
	var reg *Registry
	reg, err := NewRegistry(
		API{Key: 18, MinVersion: 0, MaxVersion: 3, Handle: func(_ context.Context, r *Request) (kmsg.Response, error) {
			resp := r.Msg.ResponseKind().(*kmsg.ApiVersionsResponse)
			resp.ApiKeys = reg.Versions()
			return resp, nil
		}},
		API{Key: 3, MinVersion: 0, MaxVersion: 12, Handle: func(_ context.Context, r *Request) (kmsg.Response, error) {
			return r.Msg.ResponseKind(), nil
		}},
		API{Key: 0, MinVersion: 3, MaxVersion: 11, Handle: func(_ context.Context, r *Request) (kmsg.Response, error) {
			if r.Msg.(*kmsg.ProduceRequest).Acks == 0 {
				return nil, nil
			}
			return r.Msg.ResponseKind(), nil
		}},
		API{Key: 42, MinVersion: 0, MaxVersion: 2, Handle: func(context.Context, *Request) (kmsg.Response, error) {
			panic("boom")
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return serve(t, cfg, reg)
}

// serve runs a Server for reg on a loopback port until the test ends.
func serve(t *testing.T, cfg Config, reg *Registry) (addr string) {
	t.Helper()
	srv, err := NewServer(cfg, reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// frame encodes req with a v1/v2 request header.
func frame(req kmsg.Request, correlation int32) []byte {
	b := kbin.AppendInt32(nil, 0)
	b = kbin.AppendInt16(b, req.Key())
	b = kbin.AppendInt16(b, req.GetVersion())
	b = kbin.AppendInt32(b, correlation)
	b = kbin.AppendNullableString(b, nil)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// readResponse reads one response frame and returns its correlation id and
// body (after the response header's tagged fields when flexible).
func readResponse(t *testing.T, c net.Conn, flexible bool) (int32, []byte) {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("reading response size: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("reading response: %v", err)
	}
	corr := int32(binary.BigEndian.Uint32(body))
	body = body[4:]
	if flexible {
		body = body[1:]
	}
	return corr, body
}

func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); !errors.Is(err, io.EOF) {
		t.Fatalf("want the broker to close the connection (EOF), got %v", err)
	}
}

func TestWireFranzGoApiVersions(t *testing.T) {
	addr := testServer(t, DefaultConfig())
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	want := map[int16][2]int16{0: {3, 11}, 3: {0, 12}, 18: {0, 3}, 42: {0, 2}}
	if len(got) != len(want) {
		t.Fatalf("advertised %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %d advertised %v, want %v", k, got[k], v)
		}
	}
}

func TestWireTooNewApiVersionsGetsV0Answer(t *testing.T) {
	c := dial(t, testServer(t, DefaultConfig()))
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	b := frame(req, 77)
	binary.BigEndian.PutUint16(b[6:8], 127) // a version from the future
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	corr, body := readResponse(t, c, false)
	if corr != 77 {
		t.Fatalf("correlation %d, want 77", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != 4 {
		t.Fatalf("got error %d with %d keys, want UNSUPPORTED_VERSION with 4", resp.ErrorCode, len(resp.ApiKeys))
	}
	// The connection stays usable: the client retries with v0.
	req.Version = 0
	c.Write(frame(req, 78))
	if corr, _ := readResponse(t, c, false); corr != 78 {
		t.Fatalf("correlation %d, want 78", corr)
	}
}

func TestWirePipelinedResponsesInOrderAndAcksZeroSilent(t *testing.T) {
	c := dial(t, testServer(t, DefaultConfig()))
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	produce := kmsg.NewPtrProduceRequest()
	produce.Version = 9
	produce.Acks = 0
	var batch []byte
	for corr := int32(1); corr <= 5; corr++ {
		batch = append(batch, frame(meta, corr)...)
		batch = append(batch, frame(produce, 100+corr)...) // no response expected
	}
	if _, err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	for want := int32(1); want <= 5; want++ {
		if corr, _ := readResponse(t, c, true); corr != want {
			t.Fatalf("response correlation %d, want %d", corr, want)
		}
	}
}

func TestWireBadInputClosesOnlyThatConnection(t *testing.T) {
	addr := testServer(t, Config{MaxRequestBytes: 1 << 20, IdleTimeout: time.Minute, MaxQueuedResponses: 4})
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 1
	unsupported := frame(meta, 1)
	binary.BigEndian.PutUint16(unsupported[6:8], 99)
	unknownKey := frame(meta, 1)
	binary.BigEndian.PutUint16(unknownKey[4:6], 999)
	truncatedBody := frame(meta, 1)[:12]
	binary.BigEndian.PutUint32(truncatedBody, 8) // claims only the fixed header
	undecodable := frame(meta, 1)
	undecodable = append(undecodable[:len(undecodable)-4], 0, 0, 0x10, 0) // 4096 topics, none present
	binary.BigEndian.PutUint32(undecodable, uint32(len(undecodable)-4))
	cases := map[string][]byte{
		"2 GiB length prefix": {0x7f, 0xff, 0xff, 0xff},
		"negative length":     {0xff, 0xff, 0xff, 0xf0},
		"too small frame":     {0, 0, 0, 3, 1, 2, 3},
		"unknown api key":     unknownKey,
		"unsupported version": unsupported,
		"header only":         truncatedBody,
		"undecodable body":    undecodable,
		"garbage":             []byte("GET / HTTP/1.1\r\nHost: kafka\r\n\r\n"),
		"handler panic":       frame(kmsg.NewPtrDeleteGroupsRequest(), 5),
	}
	for name, input := range cases {
		t.Run(name, func(t *testing.T) {
			c := dial(t, addr)
			c.Write(input)
			expectClosed(t, c)
			// Another client is still served.
			ok := dial(t, addr)
			ok.Write(frame(meta, 9))
			if corr, _ := readResponse(t, ok, false); corr != 9 {
				t.Fatalf("healthy client got correlation %d", corr)
			}
		})
	}
}

func TestWireTruncatedFrameThenHangup(t *testing.T) {
	addr := testServer(t, DefaultConfig())
	c := dial(t, addr)
	c.Write([]byte{0, 0, 0, 100, 0, 3, 0})
	c.Close()
	ok := dial(t, addr)
	meta := kmsg.NewPtrMetadataRequest()
	ok.Write(frame(meta, 3))
	if corr, _ := readResponse(t, ok, false); corr != 3 {
		t.Fatalf("got correlation %d", corr)
	}
}

func TestWireRegistryRejectsBadTables(t *testing.T) {
	h := func(context.Context, *Request) (kmsg.Response, error) { return nil, nil }
	for name, apis := range map[string][]API{
		"duplicate":      {{Key: 3, MaxVersion: 1, Handle: h}, {Key: 3, MaxVersion: 1, Handle: h}},
		"no handler":     {{Key: 3, MaxVersion: 1}},
		"inverted range": {{Key: 3, MinVersion: 2, MaxVersion: 1, Handle: h}},
		"beyond kmsg":    {{Key: 3, MaxVersion: 500, Handle: h}},
		"unknown key":    {{Key: 4000, MaxVersion: 0, Handle: h}},
	} {
		if _, err := NewRegistry(apis...); err == nil {
			t.Errorf("%s: registry accepted", name)
		}
	}
}

// TestWireHugeHeaderTagCountIsRejected is the fuzzer's find: a flexible
// request header declaring 2^32-1 tagged fields in a 15-byte frame. The
// header must be refused as truncated, without looping over the count.
func TestWireHugeHeaderTagCountIsRejected(t *testing.T) {
	body := []byte("\x00\x01\x00\x0f\xff\x00\x00\x00\x00\x00\xff\xff\xff\xff\x01\x01\x00\x7f")
	h, err := peekHeader(body)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := decode(h, body); !errors.Is(err, ErrHeaderTruncated) {
		t.Fatalf("got %v, want ErrHeaderTruncated", err)
	}
}

// TestWireReleasedBodyIsReusedOnlyWhenDeclared sends two produce requests of
// one size on one connection to a handler that keeps each request's records
// (what a handler must not do when its API releases the body). With
// ReleasesBody the second request is read into the first one's buffer; without
// it, each has its own and what the handler kept stays intact.
func TestWireReleasedBodyIsReusedOnlyWhenDeclared(t *testing.T) {
	for _, releases := range []bool{true, false} {
		var (
			mu   sync.Mutex
			kept [][]byte
		)
		reg, err := NewRegistry(API{Key: 0, MinVersion: 3, MaxVersion: 11, ReleasesBody: releases,
			Handle: func(_ context.Context, r *Request) (kmsg.Response, error) {
				mu.Lock()
				defer mu.Unlock()
				kept = append(kept, r.Msg.(*kmsg.ProduceRequest).Topics[0].Partitions[0].Records)
				return r.Msg.ResponseKind(), nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, serve(t, DefaultConfig(), reg))
		for i, fill := range []byte{'a', 'b'} {
			req := kmsg.NewPtrProduceRequest()
			req.Version, req.Acks = 9, 1
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = bytes.Repeat([]byte{fill}, 4096)
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			if _, err := c.Write(frame(req, int32(i))); err != nil {
				t.Fatal(err)
			}
			// The response comes after the handler returned: the next
			// request is read only then.
			if corr, _ := readResponse(t, c, true); corr != int32(i) {
				t.Fatalf("correlation %d, want %d", corr, i)
			}
		}
		mu.Lock()
		got := kept
		mu.Unlock()
		if len(got) != 2 {
			t.Fatalf("handler saw %d requests, want 2", len(got))
		}
		shared := &got[0][0] == &got[1][0]
		switch {
		case releases && !shared:
			t.Errorf("ReleasesBody: the second request got a new buffer, want the first one's")
		case !releases && shared:
			t.Errorf("without ReleasesBody the second request reused the first one's buffer")
		case !releases && !bytes.Equal(got[0], bytes.Repeat([]byte{'a'}, 4096)):
			t.Errorf("without ReleasesBody the first request's records changed under its handler")
		}
	}
}
