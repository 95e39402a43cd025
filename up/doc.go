// Package up runs a topology on this machine: every local cluster's brokers
// and every flow's mirror workers as child processes of the kdr binary,
// supervised (a child that dies is restarted with backoff), health-checked
// through the Kafka protocol and the workers' /healthz, and stopped in
// order (mirror workers, then brokers) when the context ends.
//
// Everything it keeps lives in one state directory (see Layout): the
// brokers' data, one log file per child, a lock that stops a second kdr up
// on the same directory, and endpoints.json, which tells kdr status and
// other tools where the clusters, metrics endpoints and processes are.
// Running again on the same directory resumes with the same data.
package up
