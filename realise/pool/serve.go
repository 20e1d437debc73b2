package pool

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// ServeBuild is the builder's half (cache.ServeOptions.Build): it
// decodes the derivation closure a pool sent, checks that it was
// evaluated for this store and that its inputs are here (the pool
// copied them, or had this machine substitute them first: a builder
// does not fetch or build what it was not asked to), and builds the derivation with this machine's sandbox and
// opts, its log going to log.
func ServeBuild(st *store.Store, opts realise.Options) func(ctx context.Context, payload []byte, log io.Writer) error {
	return func(ctx context.Context, payload []byte, log io.Writer) error {
		d, err := builtins.UnmarshalClosure(payload)
		if err != nil {
			return err
		}
		if d.Store != st.LogicalDir() {
			return fmt.Errorf("%s was evaluated for the store %s, this builder's is %s", d.FullName(), d.Store, st.LogicalDir())
		}
		if by := realise.SeesHostPaths(d); by != nil {
			return fmt.Errorf("refusing to build %s for another machine: its outputs would be impure (%s), made from this builder's host paths and sent as pure; build it on the machine whose config names them", d.FullName(), realise.HostPathsImpurity(d, by))
		}
		if err := inputsHere(st, d); err != nil {
			return err
		}
		o := opts
		o.Jobs = 1
		o.Remote = nil
		o.Substituter = nil
		o.Reporter = &logReporter{w: log}
		res, err := realise.Build(ctx, st, []*builtins.Derivation{d}, o)
		if err != nil && res != nil && len(res.Failures) > 0 {
			return fmt.Errorf("build of %s failed: %v", d.FullName(), res.Failures[0].Err)
		}
		return err
	}
}

// inputsHere refuses a derivation whose inputs are not in st.
func inputsHere(st *store.Store, d *builtins.Derivation) error {
	check := func(full, what string) error {
		p, _, err := storepath.Parse(st.LogicalDir(), full)
		if err != nil {
			return err
		}
		ok, err := st.IsValid(p)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: its input %s (%s) is not on this builder", d.FullName(), full, what)
		}
		return nil
	}
	for _, in := range d.Drvs {
		for _, o := range in.Outputs {
			full, _ := in.OutputPath(o)
			if err := check(full, in.FullName()); err != nil {
				return err
			}
		}
	}
	for _, s := range d.Srcs {
		if err := check(s.Path, "a source"); err != nil {
			return err
		}
	}
	return nil
}

// logReporter sends a build's log lines and failures to w.
type logReporter struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *logReporter) Planned(int, *realise.Plan)                    {}
func (r *logReporter) Started(*builtins.Derivation, string)          {}
func (r *logReporter) Finished(*builtins.Derivation, realise.Status) {}
func (r *logReporter) Note(string)                                   {}

func (r *logReporter) Line(_ *builtins.Derivation, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	io.WriteString(r.w, line+"\n")
}

func (r *logReporter) Failed(f *realise.Failure) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.w, "nexis: %v\n", f.Err)
}
