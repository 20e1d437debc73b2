package realise

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// A goal is the realisation of one derivation. Goals are started lazily,
// once each, as goroutines that wait for the goals of their inputs; the
// job slots bound how many builders run, not how many goals wait.
type goal struct {
	d      *builtins.Derivation
	done   chan struct{}
	err    error
	status Status
}

// depError is an input's failure seen from a goal that needed it; it is
// not a failure of that goal's own build.
type depError struct {
	dep *builtins.Derivation
	err error
}

func (e *depError) Error() string {
	return fmt.Sprintf("dependency %s failed", e.dep.FullName())
}

func (e *depError) Unwrap() error { return e.err }

type scheduler struct {
	st     *store.Store
	opts   Options
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	// slots hands out the build user id; holding one is holding a job
	// slot.
	slots      chan int
	fetchSlots chan struct{}

	// damaged holds the hashes of registered outputs that are damaged
	// on disk: a goal restores them instead of taking them as valid.
	damaged map[string]bool

	hostPaths hostPaths

	mu       sync.Mutex
	goals    map[string]*goal
	sources  map[string]*sourceOnce
	failures []*Failure
	res      Result
}

type sourceOnce struct {
	once sync.Once
	err  error
}

func newScheduler(ctx context.Context, st *store.Store, opts Options) *scheduler {
	s := &scheduler{
		st:         st,
		opts:       opts,
		slots:      make(chan int, opts.Jobs),
		fetchSlots: make(chan struct{}, max(4, opts.Jobs)),
		goals:      map[string]*goal{},
		sources:    map[string]*sourceOnce{},
		res:        Result{Status: map[string]Status{}},
	}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	for i := 0; i < opts.Jobs; i++ {
		s.slots <- opts.BuildUID
	}
	return s
}

// want returns d's goal, starting it the first time.
func (s *scheduler) want(d *builtins.Derivation) *goal {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.goals[d.ID()]; ok {
		return g
	}
	g := &goal{d: d, done: make(chan struct{})}
	s.goals[d.ID()] = g
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(g.done)
		g.status, g.err = s.run(g.d)
		s.mu.Lock()
		s.res.Status[d.ID()] = g.status
		s.mu.Unlock()
	}()
	return g
}

// need waits for the goals of inputs; the first failure is returned as a
// depError and, unless keep-going, stops the whole run.
func (s *scheduler) need(inputs []*builtins.Derivation) error {
	gs := make([]*goal, len(inputs))
	for i, in := range inputs {
		gs[i] = s.want(in)
	}
	var first error
	for _, g := range gs {
		<-g.done
		if g.err != nil && first == nil {
			first = &depError{dep: g.d, err: g.err}
			if !s.opts.KeepGoing {
				s.cancel(first)
			}
		}
	}
	return first
}

func (s *scheduler) run(d *builtins.Derivation) (Status, error) {
	if err := s.ctx.Err(); err != nil {
		return Cancelled, context.Cause(s.ctx)
	}
	// Temporary roots first, validity second (the store's protocol): from
	// here on no collector takes d's outputs, whether they are valid now
	// or registered by this goal later, while this process lives.
	if err := s.tempRoot(d); err != nil {
		return Failed, s.fail(d, err, nil)
	}
	valid, err := outputsValid(s.st, d)
	if err != nil {
		return Failed, s.fail(d, err, nil)
	}
	if valid && s.damagedOutputs(d) == nil {
		return Valid, nil
	}
	if valid {
		return s.restore(d)
	}
	if status, ok, err := s.trySubstitute(d); ok {
		return status, err
	}
	if err := checkSystem(d); err != nil && !s.remoteAccepts(d) {
		return Failed, s.fail(d, err, nil)
	}
	if err := s.need(d.Drvs); err != nil {
		var de *depError
		if errors.As(err, &de) && s.want(de.dep).status == Cancelled {
			return Cancelled, err
		}
		return DependencyFailed, err
	}
	for _, src := range d.Srcs {
		if err := s.addSource(src); err != nil {
			return Failed, s.fail(d, err, nil)
		}
	}
	if status, done, err := s.buildRemote(d); done {
		return status, err
	}
	uid, release, err := s.slot(d)
	if err != nil {
		return Cancelled, err
	}
	defer release()
	j := &job{s: s, d: d, uid: uid}
	status, err := j.realise()
	if err != nil {
		if s.ctx.Err() != nil && errors.Is(err, context.Cause(s.ctx)) {
			return Cancelled, err
		}
		return Failed, s.fail(d, err, j.log)
	}
	return status, nil
}

// slot waits for a job slot for d: a fetch slot for fetches and
// builtins, a build user's for the sandbox. release gives it back.
func (s *scheduler) slot(d *builtins.Derivation) (uid int, release func(), err error) {
	if d.Fixed != nil || builtins.IsBuiltin(d.Builder) {
		select {
		case s.fetchSlots <- struct{}{}:
			release = func() { <-s.fetchSlots }
		case <-s.ctx.Done():
			return 0, nil, context.Cause(s.ctx)
		}
	} else {
		select {
		case uid = <-s.slots:
			release = func() { s.slots <- uid }
		case <-s.ctx.Done():
			return 0, nil, context.Cause(s.ctx)
		}
	}
	if err := s.ctx.Err(); err != nil {
		release()
		return 0, nil, context.Cause(s.ctx)
	}
	return uid, release, nil
}

func shortErr(err error) string {
	if err == nil {
		return "unknown error"
	}
	var f *Failure
	if errors.As(err, &f) {
		return f.Err.Error()
	}
	return err.Error()
}

// fail records d's own failure and tells the reporter.
func (s *scheduler) fail(d *builtins.Derivation, err error, log *buildLog) error {
	f := &Failure{Drv: d, Err: err}
	if log != nil {
		f.Log = log.path
		f.Tail = log.tail()
		f.Phase = log.lastPhase()
	}
	s.mu.Lock()
	s.failures = append(s.failures, f)
	s.mu.Unlock()
	s.opts.Reporter.Failed(f)
	return f
}

// tempRoot makes d's outputs temporary roots of this process.
func (s *scheduler) tempRoot(d *builtins.Derivation) error {
	ps := make([]storepath.Path, 0, len(d.Outputs))
	for _, o := range d.Outputs {
		p, err := outputPath(d, o)
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	if err := s.st.AddTempRoots(ps...); err != nil {
		return fmt.Errorf("protecting %s from garbage collection: %w", d.Out(), err)
	}
	return nil
}

// addSource puts a path() source into the store, once per run. Its
// store path was computed at evaluation from the same contents; a
// different result means the file changed since.
func (s *scheduler) addSource(src *builtins.Source) error {
	s.mu.Lock()
	o, ok := s.sources[src.Path]
	if !ok {
		o = &sourceOnce{}
		s.sources[src.Path] = o
	}
	s.mu.Unlock()
	o.once.Do(func() {
		p, _, err := storepath.Parse(s.st.LogicalDir(), src.Path)
		if err != nil {
			o.err = fmt.Errorf("source %s: %w", src.Display, err)
			return
		}
		if err := s.st.AddTempRoots(p); err != nil {
			o.err = fmt.Errorf("protecting source %s from garbage collection: %w", src.Display, err)
			return
		}
		if ok, err := s.st.IsValid(p); err != nil || ok {
			o.err = err
			return
		}
		if src.Abs == "" {
			o.err = fmt.Errorf("source %s (%s) is not in the store and this evaluation does not know where it is on disk", src.Display, src.Path)
			return
		}
		pi, err := s.st.AddPath(src.Abs, src.Name)
		if err != nil {
			o.err = fmt.Errorf("adding source %s: %w", src.Display, err)
			return
		}
		if pi.Path != p {
			o.err = fmt.Errorf("source %s changed since it was evaluated (now %s, was %s): evaluate again", src.Display, s.st.Logical(pi.Path), src.Path)
		}
	})
	return o.err
}

// check rebuilds d (valid by now) and compares the result's tree hash
// with the registered one.
func (s *scheduler) check(d *builtins.Derivation) (Check, error) {
	p, err := outputPath(d, d.Outputs[0])
	if err != nil {
		return Check{}, err
	}
	pi, err := s.st.QueryPathInfo(p)
	if err != nil {
		return Check{}, err
	}
	uid := <-s.slots
	defer func() { s.slots <- uid }()
	j := &job{s: s, d: d, uid: uid}
	got, err := j.rebuildHash()
	if err != nil {
		return Check{}, s.fail(d, fmt.Errorf("--check rebuild: %w", err), j.log)
	}
	c := Check{Drv: d, Path: d.Out(), Identical: got == pi.TreeHash.Hex(), Want: pi.TreeHash.Hex(), Got: got}
	switch disk, err := treehash.TreeHash(s.st.Physical(p)); {
	case errors.Is(err, fs.ErrNotExist):
		c.Damaged = "it is missing"
	case err != nil:
		c.Damaged = err.Error()
	case disk != pi.TreeHash:
		c.Damaged = "it hashes to " + disk.String()
	}
	if c.Damaged != "" {
		c.Identical = false
	}
	return c, nil
}

func (s *scheduler) result() *Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.res
	r.Failures = append([]*Failure(nil), s.failures...)
	return &r
}
