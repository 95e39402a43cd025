// Package drill runs failover drills (`kdr drill run`): a scenario file
// names a topology, a load and a list of steps (faults such as killing a
// broker, a whole cluster or the mirror; switchover, promote and failback
// through package failover; waits and verifications). The drill starts the
// topology with `kdr up`, produces records with unique ids and per-key
// sequence numbers through failover/client (which follows the active
// cluster), consumes them as a group, and at the end audits every record:
// acknowledged and lost, duplicated, reordered, and what clients saw as
// unavailability (RTO) and as the data-loss window (RPO). It writes the
// report as JSON and as a self-contained HTML page, and stores a summary in
// the failover state for kdr up's metrics. docs/drills.md has the scenario
// format and the exact definitions.
package drill
