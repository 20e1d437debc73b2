package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store"
)

// What every command shares: reading ages and sizes from flags, and
// printing sizes, JSON and progress.

// parseAge reads Go durations (90m, 12h) and days or weeks (30d, 2w).
func parseAge(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(t, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("%q is not a duration: want e.g. 90m, 12h, 30d or 2w", s)
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration: want e.g. 90m, 12h, 30d or 2w", s)
	}
	return d, nil
}

// parseSize reads 1024, 500K, 500M, 10G, 1T (powers of 1024; a trailing
// "B" or "iB" is accepted).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a size: want a positive number of bytes, optionally with K, M, G or T", s)
	}
	return int64(v * float64(mult)), nil
}

// humanBytes writes a size for people.
var humanBytes = store.HumanSize

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progress shows how a long operation advances, on stderr when it is a
// terminal, at most ten times a second: what it does, a bar, done of
// total, and the bytes it moved when it moves some. A finished count
// stays on its line; anything else is cleared by end. The functions
// below adapt it to what each package reports; each is nil when stderr
// is not a terminal (the packages then report nothing).
type progress struct {
	what string
	mu   sync.Mutex
	last time.Time
	open bool // something is drawn on the current line
}

func newProgress(what string) *progress {
	if here.Verbosity <= realise.Quiet || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return &progress{what: what}
}

func (p *progress) draw(phase string, done, total int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	label := strings.TrimSpace(p.what + " " + phase)
	if total <= 0 {
		fmt.Fprintf(os.Stderr, "\r\033[K%s…", label)
		p.open = true
		return
	}
	const width = 30
	n := min(done, total) * width / total
	line := fmt.Sprintf("\r\033[K%-10s [%s%s] %d/%d", label, strings.Repeat("#", n), strings.Repeat(".", width-n), done, total)
	if bytes >= 0 {
		line += ", " + humanBytes(bytes)
	}
	if done >= total {
		line += "\n"
	}
	fmt.Fprint(os.Stderr, line)
	p.open = done < total
}

// end clears what is left on the line.
func (p *progress) end() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprint(os.Stderr, "\r\033[K")
		p.open = false
	}
}

// progressFunc shows a count: verifying, optimising, scanning.
func progressFunc(what string) func(done, total int) {
	p := newProgress(what)
	if p == nil {
		return nil
	}
	return func(done, total int) { p.draw("", done, total, -1) }
}

// transferProgress shows paths and bytes moved: copies, downloads.
func transferProgress(what string) func(done, total int, bytes int64) {
	p := newProgress(what)
	if p == nil {
		return nil
	}
	return func(done, total int, bytes int64) { p.draw("", done, total, bytes) }
}

// gcPhases is the progress of the collector's phases.
var gcPhases *progress

// gcProgress shows the collector's phases, each with its count.
func gcProgress() func(phase string, done, total int) {
	if gcPhases = newProgress(""); gcPhases == nil {
		return nil
	}
	return func(phase string, done, total int) { gcPhases.draw(phase, done, total, -1) }
}

// endProgress clears what the collector's progress left on its line.
func endProgress() { gcPhases.end() }
