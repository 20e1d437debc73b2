// Package progress draws how a long operation advances on a terminal:
// one line, redrawn at most ten times a second, with what it does, a
// bar, done of total, and the bytes it moved when it moves some. A
// finished count stays on its line; anything else is cleared by End.
//
// A nil *Bar draws nothing, and its adapters are nil: the packages that
// report progress then report nothing.
package progress

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/nexisos/nexis/store"
)

// Bar is the progress line of one operation.
type Bar struct {
	w    *os.File
	what string
	mu   sync.Mutex
	last time.Time
	open bool // something is drawn on the current line
}

// New is a bar on w labelled what; nil when w is not a terminal.
func New(w *os.File, what string) *Bar {
	if !term.IsTerminal(int(w.Fd())) {
		return nil
	}
	return &Bar{w: w, what: what}
}

// Draw shows done of total (a label and an ellipsis when total is not
// known) of phase, and bytes when they are not negative.
func (p *Bar) Draw(phase string, done, total int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	label := strings.TrimSpace(p.what + " " + phase)
	if total <= 0 {
		fmt.Fprintf(p.w, "\r\033[K%s…", label)
		p.open = true
		return
	}
	const width = 30
	n := min(done, total) * width / total
	line := fmt.Sprintf("\r\033[K%-10s [%s%s] %d/%d", label, strings.Repeat("#", n), strings.Repeat(".", width-n), done, total)
	if bytes >= 0 {
		line += ", " + store.HumanSize(bytes)
	}
	if done >= total {
		line += "\n"
	}
	fmt.Fprint(p.w, line)
	p.open = done < total
}

// End clears what is left on the line.
func (p *Bar) End() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open {
		fmt.Fprint(p.w, "\r\033[K")
		p.open = false
	}
}

// Count shows a count: verifying, optimising, scanning.
func (p *Bar) Count() func(done, total int) {
	if p == nil {
		return nil
	}
	return func(done, total int) { p.Draw("", done, total, -1) }
}

// Transfer shows paths and bytes moved: copies, downloads.
func (p *Bar) Transfer() func(done, total int, bytes int64) {
	if p == nil {
		return nil
	}
	return func(done, total int, bytes int64) { p.Draw("", done, total, bytes) }
}

// Phases shows phases, each with its count (the collector's).
func (p *Bar) Phases() func(phase string, done, total int) {
	if p == nil {
		return nil
	}
	return func(phase string, done, total int) { p.Draw(phase, done, total, -1) }
}
