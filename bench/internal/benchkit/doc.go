// Package benchkit is the code the benchmark commands under bench/ share:
// running a broker as a child process and reading its address line, its
// resident memory and the tail of its log; fetching and summarising CPU
// profiles from its /debug/pprof endpoint; the franz-go producer loops
// (as fast as possible, and paced with per-record latency percentiles) and
// their tallies; the flags every command takes; and the pieces of the
// markdown report every command prints.
//
// It holds mechanism only. What each command measures, in what order, and
// how its report reads stay in the command, so that a change to one
// benchmark's method does not silently change the other's figures.
package benchkit
