// Package proctest starts child processes for crash tests: the parent
// reads the child's progress line by line while it waits for the moment
// to kill it.
package proctest

import (
	"bufio"
	"bytes"
	"os/exec"
	"testing"
)

// Start starts cmd with its standard output delivered as lines (the
// channel closes when the output ends) and its standard error collected
// for failure messages.
func Start(t testing.TB, cmd *exec.Cmd) (lines <-chan string, stderr *bytes.Buffer) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr = &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ch <- sc.Text()
		}
		close(ch)
	}()
	return ch, stderr
}
