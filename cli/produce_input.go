package cli

import (
	"bufio"
	"io"
	"strings"
)

// inputLine is one line of input without its line ending, or the error
// that ended reading.
type inputLine struct {
	text string
	err  error
}

// readLines reads lines of r on its own goroutine, so that the caller can
// stop waiting (on Ctrl-C) even while a terminal read blocks. The channel
// closes at EOF or after an error line. Call stop when done; a read that is
// blocked at that point ends with the process.
func readLines(r io.Reader) (lines <-chan inputLine, stop func()) {
	out := make(chan inputLine)
	done := make(chan struct{})
	go func() {
		defer close(out)
		br := bufio.NewReader(r)
		for {
			text, err := br.ReadString('\n')
			var l inputLine
			switch {
			case err == io.EOF && text == "":
				return
			case err != nil && err != io.EOF:
				l.err = err
			default:
				l.text = strings.TrimSuffix(strings.TrimSuffix(text, "\n"), "\r")
			}
			select {
			case out <- l:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out, func() { close(done) }
}
