// Package raftstore is the replicated cluster.Store: every broker runs a
// cluster.FSM, and hashicorp/raft orders the metadata commands so that all of
// them apply the same sequence. The brokers listed in Config.Voters form the
// raft quorum ("combined mode": brokers are also the metadata voters); the
// leader is the metadata controller. Other brokers join as non-voters that
// receive every command but do not vote.
//
// # One port
//
// Each node listens on one TCP address, Config.RaftAddr, for both raft's own
// transport and kdr's RPC. The first byte a dialer writes says which: 1 for
// raft, 2 for kdr RPC (mux.go). One port means one address per broker to
// configure, advertise and open in a firewall, and the raft address a node
// learns from the raft configuration is also where it sends kdr requests.
// A peek at one byte costs nothing per connection, and both protocols keep
// long-lived pooled connections.
//
// After that byte comes the dialer's cluster id, and a node drops
// connections from another cluster (kdr_raft_refused_connections_total):
// raft's RPCs carry no cluster, so a node of another cluster that took a
// stopped voter's address would otherwise vote in this cluster's elections.
// The brokers of one cluster must therefore share --cluster-id, which
// broker start-up already requires of a data dir. Brokers from before the
// preamble carried the id cannot talk to those after: upgrade a cluster's
// brokers together.
//
// # Peer addresses
//
// Config.PeerAddresses replaces, for the node ids it lists, the address
// this node dials — for every outbound connection: raft's transport looks
// each server up by id (raft's ServerAddressProvider, peers.go), kdr RPC to
// the leader dials the leader's id, and a join through a seed that is a
// voter's address in Voters goes to that voter's override. The raft
// configuration keeps the advertised addresses, and this node still tells
// others its own advertised address (as leader or candidate), so overrides
// are private to the node that has them. Tests give node i the addresses of
// fault proxies (faultproxy.Mesh.Addr(i, j)) to cut any path between two
// nodes on its own.
//
// kdr RPC is request/response over pooled connections (wire.go for the
// frames). Kinds the store serves itself start with "kdr.": propose, join,
// remove and barrier (Sync); SetHandler adds application kinds (the
// controller's broker heartbeats), which RequestLeader delivers to the
// current leader.
//
// # Propose
//
// On the leader, Propose appends the encoded command (cluster.Encode) to the
// raft log and returns the FSM's result once it is committed and applied.
// On a follower, Propose sends the encoded command to the leader
// ("kdr.propose"), which appends it and answers with its log index. The
// follower then waits until its own FSM has applied that index and returns
// the result and error of its own application of the entry: the same Go
// values the leader got (FSMs are deterministic), with no result encoding,
// and State() already shows the change when Propose returns. While
// forwarded proposals wait, the FSM keeps each applied entry's result by
// index. If an installed snapshot covered the entry, the result value is
// lost (ErrResultUnavailable) but an error still arrives from the leader's
// copy, as *cluster.Error with its Kafka code when it had one.
//
// A request is resent to a new leader only when it certainly did not run:
// the leader refused it (ErrNotLeader) or it could not be delivered. When a
// connection fails mid-request, leadership is lost while the entry commits,
// or the context ends after the append, the error wraps ErrOutcomeUnknown:
// the command may or may not be applied, as with any raft client; Sync and
// read State() to find out. Without a reachable leader before the context
// ends, the error wraps ErrNoLeader and the context's error.
//
// # Bootstrap and joins
//
// A node in Voters whose Dir holds no raft state bootstraps the cluster with
// the whole voter list; every voter bootstraps the same configuration, which
// raft accepts. A restarted node (raft.HasExistingState) never bootstraps
// again. A node outside Voters with no state sends "kdr.join" (its node id
// and raft address) to its Seeds in turn until one accepts; a seed that is
// not the leader passes the request on, and the leader adds the node as a
// non-voter (AddNonvoter). Joins are idempotent: a server already in the
// configuration at that address is left alone. Open waits for the join to
// be accepted; after that the node has state and restarts like any other.
//
// # Snapshots
//
// A snapshot is the JSON of the FSM's state with the raft index of the last
// command applied, which lets a waiting forwarded proposal see that a
// snapshot covered its entry:
//
//	{"applied_index": 1234, "state": {...cluster.State...}}
//
// A log entry whose command type this version does not know is logged,
// counted (kdr_raft_undecodable_entries_total) and skipped, so an older node
// keeps running; its State.Index then lags the newer nodes' by one.
//
// # On disk
//
// Under Config.Dir:
//
//	wal/         raft-wal: the raft log segments (*.wal) and wal-meta.db
//	             (segment list and raft's stable store: current term, vote)
//	snapshots/   raft's FileSnapshotStore, the newest 2 kept:
//	             <term>-<index>-<ms>/meta.json and state.bin
package raftstore
