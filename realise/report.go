package realise

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/hint"
)

// Reporter is told what a Build does. Its methods are called from many
// goroutines at once.
type Reporter interface {
	// Planned is called once, before anything runs, with the number of
	// derivations that need work.
	Planned(n int, p *Plan)
	// Started: d's builder starts; kind is "build", "fetch" or "write".
	Started(d *builtins.Derivation, kind string)
	// Line is one line of d's log.
	Line(d *builtins.Derivation, line string)
	// Finished: d's outputs are registered.
	Finished(d *builtins.Derivation, s Status)
	// Failed: d's own build failed.
	Failed(f *Failure)
	// Note is a message for the user.
	Note(msg string)
}

type nopReporter struct{}

func (nopReporter) Planned(int, *Plan)                    {}
func (nopReporter) Started(*builtins.Derivation, string)  {}
func (nopReporter) Line(*builtins.Derivation, string)     {}
func (nopReporter) Finished(*builtins.Derivation, Status) {}
func (nopReporter) Failed(*Failure)                       {}
func (nopReporter) Note(string)                           {}

// FailureText is how a failure is shown: the derivation, what went
// wrong, the end of its log and where the rest is.
func FailureText(f *Failure) string {
	var b strings.Builder
	if f.Phase != "" {
		fmt.Fprintf(&b, "error: %s of %s failed in phase %s: %v\n", verb(f.Drv), f.Drv.Out(), f.Phase, f.Err)
	} else {
		fmt.Fprintf(&b, "error: %s of %s failed: %v\n", verb(f.Drv), f.Drv.Out(), f.Err)
	}
	fmt.Fprintf(&b, "  derivation %s (%s)\n", f.Drv.FullName(), f.Drv.ID())
	if len(f.Tail) > 0 {
		fmt.Fprintf(&b, "  last %d log lines:\n", len(f.Tail))
		for _, l := range f.Tail {
			fmt.Fprintf(&b, "  > %s\n", l)
		}
	}
	if f.Log != "" {
		fmt.Fprintf(&b, "  full log: %s\n", hint.Command("log", f.Drv.Out()))
	}
	return b.String()
}

func verb(d *builtins.Derivation) string {
	if d.Fixed != nil {
		return "fetch"
	}
	return "build"
}

// Verbosity is how much a command says while it works (-q, -v).
type Verbosity int

const (
	// Quiet shows failures only: no progress, no plan, no notes.
	Quiet Verbosity = -1
	// Normal shows progress, the plan and notes.
	Normal Verbosity = 0
	// Verbose adds every build's log lines, as -L does.
	Verbose Verbosity = 1
)

// NewReporter picks the terminal reporter when w is a terminal, else
// plain lines. printLogs (-L) prints every build's log lines too.
func NewReporter(w *os.File, printLogs bool, v Verbosity) Reporter {
	printLogs = printLogs || v >= Verbose
	if v <= Quiet {
		return &PlainReporter{W: w, PrintLogs: printLogs, Quiet: true}
	}
	if term.IsTerminal(int(w.Fd())) {
		return newTermReporter(w, int(w.Fd()), printLogs)
	}
	return &PlainReporter{W: w, PrintLogs: printLogs}
}

// PlainReporter writes one line per event, for logs and pipes.
type PlainReporter struct {
	W         io.Writer
	PrintLogs bool
	// Quiet drops all but failures and log lines.
	Quiet bool
	mu    sync.Mutex
}

func (r *PlainReporter) printf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.W, format, args...)
}

func (r *PlainReporter) Planned(n int, p *Plan) {
	if n > 0 && !r.Quiet {
		r.printf("nexis: %d to build, %d to fetch\n", len(p.Build), len(p.Fetch))
	}
}

func (r *PlainReporter) Started(d *builtins.Derivation, kind string) {
	if kind == "write" || r.Quiet {
		return
	}
	r.printf("nexis: %sing %s\n", strings.TrimSuffix(kind, "e"), d.Out())
}

func (r *PlainReporter) Line(d *builtins.Derivation, line string) {
	if r.PrintLogs {
		r.printf("%s> %s\n", d.FullName(), line)
	}
}

func (r *PlainReporter) Finished(*builtins.Derivation, Status) {}
func (r *PlainReporter) Failed(f *Failure)                     { r.printf("%s", FailureText(f)) }
func (r *PlainReporter) Note(msg string) {
	if !r.Quiet {
		r.printf("nexis: %s\n", msg)
	}
}

// termReporter keeps one line per running build (its phase and last log
// line) and a count line at the bottom of the terminal, redrawn at most
// ten times a second; messages scroll above it.
type termReporter struct {
	w         io.Writer
	fd        int
	printLogs bool

	mu      sync.Mutex
	running map[string]*activity
	total   int
	done    int
	failed  int
	drawn   int // lines of the status area on screen
	dirty   bool
	stop    chan struct{}
	stopped chan struct{}
}

type activity struct {
	d     *builtins.Derivation
	kind  string
	phase string
	last  string
	start time.Time
}

func newTermReporter(w io.Writer, fd int, printLogs bool) *termReporter {
	r := &termReporter{w: w, fd: fd, printLogs: printLogs, running: map[string]*activity{},
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go r.loop()
	return r
}

func (r *termReporter) loop() {
	defer close(r.stopped)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.mu.Lock()
			if r.dirty {
				r.redraw()
			}
			r.mu.Unlock()
		case <-r.stop:
			r.mu.Lock()
			r.clear()
			r.mu.Unlock()
			return
		}
	}
}

// Close erases the status area; call it before printing results.
func (r *termReporter) Close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.stopped
}

func (r *termReporter) clear() {
	if r.drawn > 0 {
		fmt.Fprintf(r.w, "\x1b[%dA\x1b[J", r.drawn)
		r.drawn = 0
	}
}

func (r *termReporter) redraw() {
	r.clear()
	width := 100
	if w, _, err := term.GetSize(r.fd); err == nil && w > 20 {
		width = w
	}
	acts := make([]*activity, 0, len(r.running))
	for _, a := range r.running {
		acts = append(acts, a)
	}
	sort.Slice(acts, func(i, j int) bool { return acts[i].start.Before(acts[j].start) })
	var lines []string
	for _, a := range acts {
		l := fmt.Sprintf("  %s %s", a.kind, a.d.FullName())
		if a.phase != "" {
			l += " [" + a.phase + "]"
		}
		l += fmt.Sprintf(" %ds", int(time.Since(a.start).Seconds()))
		if a.last != "" {
			l += ": " + a.last
		}
		lines = append(lines, truncate(l, width-1))
	}
	status := fmt.Sprintf("[%d/%d done, %d running", r.done, r.total, len(r.running))
	if r.failed > 0 {
		status += fmt.Sprintf(", %d failed", r.failed)
	}
	lines = append(lines, truncate(status+"]", width-1))
	for _, l := range lines {
		fmt.Fprintf(r.w, "%s\x1b[K\n", l)
	}
	r.drawn = len(lines)
	r.dirty = false
}

func truncate(s string, n int) string {
	s = strings.Map(func(c rune) rune {
		if c < ' ' {
			return ' '
		}
		return c
	}, s)
	if len([]rune(s)) <= n {
		return s
	}
	return string([]rune(s)[:max(0, n-1)]) + "…"
}

// above prints text above the status area.
func (r *termReporter) above(text string) {
	r.clear()
	io.WriteString(r.w, text)
	r.dirty = true
}

func (r *termReporter) Planned(n int, p *Plan) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total = n
	r.dirty = true
}

func (r *termReporter) Started(d *builtins.Derivation, kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running[d.ID()] = &activity{d: d, kind: kind, start: time.Now()}
	r.dirty = true
}

func (r *termReporter) Line(d *builtins.Derivation, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.running[d.ID()]; a != nil {
		if p, ok := strings.CutPrefix(line, "nexis: "); ok {
			a.phase = p
		} else if strings.TrimSpace(line) != "" {
			a.last = strings.TrimSpace(line)
		}
	}
	if r.printLogs {
		r.above(d.FullName() + "> " + line + "\n")
	}
	r.dirty = true
}

func (r *termReporter) Finished(d *builtins.Derivation, s Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.running, d.ID())
	r.done++
	r.dirty = true
}

func (r *termReporter) Failed(f *Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.running, f.Drv.ID())
	r.failed++
	r.above(FailureText(f))
}

func (r *termReporter) Note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.above("nexis: " + msg + "\n")
}

// CloseReporter erases a terminal reporter's status area; other
// reporters need nothing.
func CloseReporter(r Reporter) {
	if t, ok := r.(*termReporter); ok {
		t.Close()
	}
}

// Print writes the plan of a dry run: what would be fetched, what built,
// or that target is valid already.
func (p *Plan) Print(w io.Writer, target *builtins.Derivation) {
	section := func(title string, ds []*builtins.Derivation) {
		if len(ds) == 0 {
			return
		}
		fmt.Fprintf(w, "%s (%d):\n", title, len(ds))
		for _, d := range ds {
			fmt.Fprintf(w, "  %s\n", d.Out())
		}
	}
	section("these would be fetched", p.Fetch)
	section("these would be built", p.Build)
	if len(p.Fetch)+len(p.Build) == 0 {
		fmt.Fprintf(w, "nothing to do: %s is valid\n", target.Out())
	}
}

// JSON is the plan's --json form: the outputs to fetch and to build.
func (p *Plan) JSON() map[string][]string {
	paths := func(ds []*builtins.Derivation) []string {
		out := []string{}
		for _, d := range ds {
			out = append(out, d.Out())
		}
		return out
	}
	return map[string][]string{"fetch": paths(p.Fetch), "build": paths(p.Build)}
}
