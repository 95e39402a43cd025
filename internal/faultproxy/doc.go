// Package faultproxy is an in-process TCP proxy that injects network faults
// for partition and failover tests: a Proxy forwards one listen address to one
// upstream and can black-hole, reset or delay its traffic; a Mesh puts a Proxy
// on every ordered pair of cluster nodes so that any node can be isolated or
// any set of nodes partitioned from the rest.
//
// Fault modes:
//
//   - Cut black-holes the path, as a dropped network does: live connections
//     stay open but no byte (and no FIN) is forwarded in either direction;
//     new connections are accepted but not dialled upstream. Bytes already
//     sent are held, not dropped, so after Heal each connection carries on
//     with an intact byte stream, like TCP retransmitting across a healed
//     partition. Clients notice only through their own timeouts.
//   - Refuse resets every live connection (RST to both ends) and resets every
//     new one as soon as it is accepted, as a crashed peer or a firewall
//     rejecting packets does.
//   - Heal forwards again.
//
// When Cut or Refuse returns, the proxy has stopped forwarding: no byte
// reaches either end afterwards until Heal.
//
// The package does not use toxiproxy: its timeout toxic (the black hole)
// drops the bytes sent while it is active and closes the connection when it
// is removed, so it cannot model a partition that heals under live
// connections.
package faultproxy
