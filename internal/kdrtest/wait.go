package kdrtest

import "time"

// Eventually polls cond every 20 ms until it returns true or timeout passes,
// then fails the test with the last reason cond gave.
func Eventually(t TB, timeout time.Duration, cond func() (ok bool, reason string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, reason := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %s", timeout, reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
