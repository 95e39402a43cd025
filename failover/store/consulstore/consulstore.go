// Package consulstore is the Consul backend of the failover coordination
// store, for orchestrators on several machines.
//
// # Keys and services
//
// Under the key prefix P (default "kdr/<topology>"):
//
//	P/state    the State document as JSON; its ModifyIndex is the version
//	           CompareAndSwap compares (a KV check-and-set in a transaction)
//	P/active   the active cluster's name as plain text, Flags = the epoch;
//	           written in the same transaction as a state change that
//	           changes either, for consul-template and other readers:
//	           {{ key "kdr/<topology>/active" }}
//	P/lock     the orchestrator lock: acquired with a session (TTL 15 s,
//	           renewed every 5 s, behavior release, lock-delay 1 s), value
//	           the holder's LockRecord as JSON
//
// Each cluster registered with RegisterCluster is an agent service
// "kdr-<topology>-<cluster>" with one TCP check per broker (every 2 s,
// timeout 1 s); ClusterHealth reads those checks from the catalog.
//
// Every call is bounded by Config.Timeout (5 s); a Consul that does not
// answer gives a *store.UnavailableError naming the address.
package consulstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/kdr-io/kdr/failover/store/internal/model"
)

// Defaults of Config.
const (
	DefaultAddress       = "127.0.0.1:8500"
	DefaultTimeout       = 5 * time.Second
	DefaultSessionTTL    = 15 * time.Second
	DefaultLockDelay     = time.Second
	DefaultWatchWait     = time.Minute
	DefaultCheckInterval = 2 * time.Second
	DefaultCheckTimeout  = time.Second
)

// Config reaches Consul. Zero fields take the defaults.
type Config struct {
	// Topology is the topology's name (required); it names the key prefix
	// and the services.
	Topology string
	// Address of the Consul agent's HTTP API, host:port or a URL with
	// scheme http, https or unix (default 127.0.0.1:8500).
	Address string
	// Token is the ACL token ("": the agent's default token).
	Token string
	// KeyPrefix is where the keys live (default "kdr/<Topology>").
	KeyPrefix string
	// Timeout bounds every request except Watch's blocking queries
	// (default 5 s).
	Timeout time.Duration
	// SessionTTL is the lock session's TTL (default 15 s, at least 10 s,
	// Consul's minimum); the session is renewed every TTL/3.
	SessionTTL time.Duration
	// LockDelay is how long Consul keeps a lock free after its session was
	// invalidated (default 1 s).
	LockDelay time.Duration
	// WatchWait is the longest a single blocking query waits before Watch
	// reissues it (default 1 m).
	WatchWait time.Duration
	// CheckInterval and CheckTimeout are the brokers' TCP checks' interval
	// and timeout (defaults 2 s and 1 s).
	CheckInterval time.Duration
	CheckTimeout  time.Duration
}

func (c *Config) setDefaults() error {
	if c.Topology == "" {
		return errors.New("consulstore: Config.Topology is empty")
	}
	if c.Address == "" {
		c.Address = DefaultAddress
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = "kdr/" + c.Topology
	}
	c.KeyPrefix = strings.Trim(c.KeyPrefix, "/")
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.SessionTTL < 10*time.Second {
		return fmt.Errorf("consulstore: Config.SessionTTL %s is below Consul's minimum of 10s", c.SessionTTL)
	}
	if c.LockDelay <= 0 {
		c.LockDelay = DefaultLockDelay
	}
	if c.WatchWait <= 0 {
		c.WatchWait = DefaultWatchWait
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.CheckTimeout <= 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
	return nil
}

// Store is a topology's failover state in Consul. Its methods are safe for
// concurrent use.
type Store struct {
	cfg       Config
	client    *api.Client
	transport *http.Transport
}

// New makes a Store. It does not contact Consul.
func New(cfg Config) (*Store, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext
	tr.MaxIdleConnsPerHost = 8
	client, err := api.NewClient(&api.Config{Address: cfg.Address, Token: cfg.Token, Transport: tr})
	if err != nil {
		return nil, fmt.Errorf("consulstore: consul address %q: %w", cfg.Address, err)
	}
	return &Store{cfg: cfg, client: client, transport: tr}, nil
}

// Config returns the configuration with defaults applied.
func (s *Store) Config() Config { return s.cfg }

// Key returns the full key of name ("state", "active", "lock").
func (s *Store) Key(name string) string { return s.cfg.KeyPrefix + "/" + name }

// Close drops idle connections.
func (s *Store) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// call bounds one request by the store's timeout.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

// fail turns a request's error into the store's: the caller's own
// cancellation as is, a refusal by Consul (4xx: ACLs, bad request) as a
// plain error, anything else (no connection, no answer in time, no leader)
// as ErrUnavailable.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("consulstore: %s: %w", op, ctxErr)
	}
	var se api.StatusError
	if errors.As(err, &se) && se.Code >= 400 && se.Code < 500 {
		hint := ""
		if se.Code == http.StatusForbidden {
			hint = " (check failover.coordination.consul.token or tokenEnv)"
		}
		return fmt.Errorf("consulstore: %s: consul at %s refused: %w%s", op, s.cfg.Address, err, hint)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %s: %w", s.cfg.Timeout, err)
	}
	return &model.UnavailableError{Backend: "consul", Addr: s.cfg.Address, Op: op, Err: err,
		Hint: "is the agent running? check failover.coordination.consul.address"}
}

// Get reads P/state.
func (s *Store) Get(ctx context.Context) (model.Versioned, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	key := s.Key("state")
	pair, _, err := s.client.KV().Get(key, (&api.QueryOptions{}).WithContext(cctx))
	if err != nil {
		return model.Versioned{}, s.fail(ctx, "get "+key, err)
	}
	return decode(pair)
}

func decode(pair *api.KVPair) (model.Versioned, error) {
	if pair == nil {
		return model.Versioned{}, nil
	}
	var st model.State
	if err := json.Unmarshal(pair.Value, &st); err != nil {
		return model.Versioned{}, fmt.Errorf("consulstore: %s does not hold a failover state document: %w", pair.Key, err)
	}
	return model.Versioned{State: st, Version: pair.ModifyIndex}, nil
}

// CompareAndSwap writes P/state if its ModifyIndex is still version, and
// P/active in the same transaction if the active cluster or epoch changed.
func (s *Store) CompareAndSwap(ctx context.Context, st model.State, version uint64) (uint64, error) {
	st.TrimHistory()
	value, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("consulstore: encode state: %w", err)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	key, activeKey := s.Key("state"), s.Key("active")
	ops := api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: key, Value: value, Index: version}}}
	if st.Active != "" {
		active, _, err := s.client.KV().Get(activeKey, (&api.QueryOptions{}).WithContext(cctx))
		if err != nil {
			return 0, s.fail(ctx, "get "+activeKey, err)
		}
		if active == nil || string(active.Value) != st.Active || active.Flags != uint64(st.Epoch) {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: activeKey,
				Value: []byte(st.Active), Flags: uint64(st.Epoch)}})
		}
	}
	ok, resp, _, err := s.client.Txn().Txn(ops, (&api.QueryOptions{}).WithContext(cctx))
	if err != nil {
		return 0, s.fail(ctx, "write "+key, err)
	}
	if ok {
		if len(resp.Results) == 0 || resp.Results[0].KV == nil {
			return 0, fmt.Errorf("consulstore: write %s: transaction answered without the key's new index", key)
		}
		return resp.Results[0].KV.ModifyIndex, nil
	}
	// Rolled back: a lost check-and-set unless the version still matches.
	cur, getErr := s.Get(ctx)
	if getErr != nil {
		return 0, getErr
	}
	if cur.Version != version {
		return 0, fmt.Errorf("%w: %s is at index %d, not %d", model.ErrConflict, key, cur.Version, version)
	}
	var msgs []string
	for _, e := range resp.Errors {
		msgs = append(msgs, fmt.Sprintf("op %d: %s", e.OpIndex, e.What))
	}
	return 0, fmt.Errorf("consulstore: write %s: consul at %s rolled the transaction back: %s", key, s.cfg.Address, strings.Join(msgs, "; "))
}

// Watch runs blocking queries on P/state until its ModifyIndex exceeds
// after.
func (s *Store) Watch(ctx context.Context, after uint64) (model.Versioned, error) {
	key := s.Key("state")
	waitIndex := after
	for {
		// Consul adds up to WaitTime/16 of jitter to a blocking query.
		qctx, cancel := context.WithTimeout(ctx, s.cfg.WatchWait+s.cfg.WatchWait/16+s.cfg.Timeout)
		q := &api.QueryOptions{WaitIndex: waitIndex, WaitTime: s.cfg.WatchWait}
		pair, meta, err := s.client.KV().Get(key, q.WithContext(qctx))
		cancel()
		if err != nil {
			return model.Versioned{}, s.fail(ctx, "watch "+key, err)
		}
		if pair != nil && pair.ModifyIndex > after {
			return decode(pair)
		}
		// An index that went backwards (a restored snapshot) restarts the
		// wait from zero, as Consul's blocking-query guide says.
		switch {
		case meta.LastIndex < waitIndex:
			waitIndex = 0
		case meta.LastIndex == 0:
			waitIndex = 1 // index 0 would not block
		default:
			waitIndex = meta.LastIndex
		}
	}
}
