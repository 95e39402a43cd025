// Package clientsec says how kdr's Kafka clients authenticate to a cluster
// that asks for it: TLS (the brokers' certificates checked against a CA
// file or the system's roots, optionally a client certificate) and SASL
// (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512), as Kafka's security.protocol
// SSL, SASL_PLAINTEXT and SASL_SSL.
//
// One Config serves every client kdr makes for a cluster: the mirror's
// workers (a flow's source and target), the topology's plan and apply,
// kdr status and the failover's clients. A topology gives it per cluster
// under "security"; `kdr mirror run` takes it as --source-* and --target-*
// flags. A password is best given through an environment variable
// (sasl.passwordEnv, or the flags' KDR_* variables), so that neither a
// committed file nor a process list shows it.
//
// kdr's own brokers do not speak TLS or SASL; this is for the existing
// clusters kdr mirrors from, to, or fails over between.
package clientsec
