// Package kdrtest starts real kdr brokers for tests: in-process (fast, for
// protocol and unit-level integration tests) or as a separate `kdr broker`
// process (for client compatibility, kill -9 and restart tests). It also has
// the polling helper tests use instead of sleeps.
//
// It depends on TB, the subset of testing.TB it needs, so that it does not
// import the testing package into non-test code.
package kdrtest

// TB is the part of testing.TB the harness uses.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Failed() bool
}
