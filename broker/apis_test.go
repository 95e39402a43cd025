package broker_test

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kdr-io/kdr/internal/kdrtest"
)

// TestBrokerEveryAdvertisedVersionAnswers is the completeness check for the
// API table: for every API and every version ApiVersions advertises, a
// request with default fields gets a well-formed response of that version
// with the right correlation id, on one connection, and the connection stays
// open. An advertised version without a working handler fails here.
func TestBrokerEveryAdvertisedVersionAnswers(t *testing.T) {
	b := kdrtest.StartBroker(t)
	cl := client(t, b.Addr())
	versions, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctxT(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	corr := int32(0)
	for _, k := range versions.ApiKeys {
		for v := k.MinVersion; v <= k.MaxVersion; v++ {
			req := kmsg.RequestForKey(k.ApiKey)
			req.SetVersion(v)
			switch r := req.(type) {
			case *kmsg.FetchRequest:
				r.MaxWaitMillis = 0
			case *kmsg.ProduceRequest:
				r.Acks = 1
			case *kmsg.JoinGroupRequest:
				r.Group, r.ProtocolType, r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = "", "consumer", 10000, 100
			}
			corr++
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write(frameRequest(req, corr)); err != nil {
				t.Fatalf("%s v%d: write: %v", kmsg.NameForKey(k.ApiKey), v, err)
			}
			gotCorr, body, err := readFrame(conn, req.IsFlexible() && k.ApiKey != 18)
			if err != nil {
				t.Fatalf("%s v%d: no response (connection closed?): %v", kmsg.NameForKey(k.ApiKey), v, err)
			}
			if gotCorr != corr {
				t.Fatalf("%s v%d: correlation %d, want %d", kmsg.NameForKey(k.ApiKey), v, gotCorr, corr)
			}
			resp := req.ResponseKind()
			if err := resp.ReadFrom(body); err != nil {
				t.Fatalf("%s v%d: response does not decode: %v", kmsg.NameForKey(k.ApiKey), v, err)
			}
		}
	}
	if corr < 100 {
		t.Fatalf("only %d API versions advertised", corr)
	}
}

func frameRequest(req kmsg.Request, correlation int32) []byte {
	b := kbin.AppendInt32(nil, 0)
	b = kbin.AppendInt16(b, req.Key())
	b = kbin.AppendInt16(b, req.GetVersion())
	b = kbin.AppendInt32(b, correlation)
	cid := "kdr-test"
	b = kbin.AppendNullableString(b, &cid)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func readFrame(c net.Conn, flexibleHeader bool) (int32, []byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		return 0, nil, err
	}
	corr := int32(binary.BigEndian.Uint32(body))
	body = body[4:]
	if flexibleHeader {
		body = body[1:]
	}
	return corr, body, nil
}
