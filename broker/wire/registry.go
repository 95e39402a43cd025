package wire

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Handler serves one decoded request. It returns the response to write, or a
// nil response when nothing is to be written (produce with acks=0). A non-nil
// error closes the connection; use it only when Kafka would close it too.
type Handler func(ctx context.Context, req *Request) (kmsg.Response, error)

// API is one Kafka API the broker implements: its key, the version range that
// is implemented and tested, and its handler. ApiVersions answers are derived
// from the registered APIs, so what is advertised cannot drift from what is
// served.
type API struct {
	Key        int16
	MinVersion int16
	MaxVersion int16
	Handle     Handler
	// ReleasesBody says the handler keeps no part of the request once it
	// has returned, and neither does its response, so the connection may
	// read its next request into the same buffer. Kafka's decoded byte
	// fields are sub-slices of that buffer: an API whose handler keeps one
	// (group member metadata) must leave this false.
	ReleasesBody bool
}

// Registry maps API keys to their implementation. It is filled once at broker
// start and only read afterwards, so lookups take no lock.
type Registry struct {
	apis map[int16]API
}

// NewRegistry returns a registry holding apis. It fails on a duplicate key, an
// empty or inverted version range, a range kmsg cannot encode, or a nil
// handler: all programming errors that must not reach a client.
func NewRegistry(apis ...API) (*Registry, error) {
	r := &Registry{apis: make(map[int16]API, len(apis))}
	for _, a := range apis {
		name := kmsg.NameForKey(a.Key)
		req := kmsg.RequestForKey(a.Key)
		switch {
		case req == nil:
			return nil, fmt.Errorf("wire: API key %d is unknown to kmsg", a.Key)
		case a.Handle == nil:
			return nil, fmt.Errorf("wire: %s has no handler", name)
		case a.MinVersion < 0 || a.MinVersion > a.MaxVersion:
			return nil, fmt.Errorf("wire: %s version range %d..%d is invalid", name, a.MinVersion, a.MaxVersion)
		case a.MaxVersion > req.MaxVersion():
			return nil, fmt.Errorf("wire: %s max version %d is above kmsg's %d", name, a.MaxVersion, req.MaxVersion())
		}
		if _, dup := r.apis[a.Key]; dup {
			return nil, fmt.Errorf("wire: %s registered twice", name)
		}
		r.apis[a.Key] = a
	}
	return r, nil
}

// Lookup returns the API registered for key.
func (r *Registry) Lookup(key int16) (API, bool) {
	a, ok := r.apis[key]
	return a, ok
}

// Versions lists the registered APIs in key order, as ApiVersions reports them.
func (r *Registry) Versions() []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(r.apis))
	for _, a := range r.apis {
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.Key, a.MinVersion, a.MaxVersion
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}

// Keys returns the registered API keys in ascending order.
func (r *Registry) Keys() []int16 {
	out := make([]int16, 0, len(r.apis))
	for k := range r.apis {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
