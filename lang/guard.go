package lang

import (
	"fmt"
	"runtime/metrics"
	"time"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/nexisos/nexis/builtins"
)

// An evaluation runs code anyone who writes a module wrote, as root. Its
// time is bounded by --max-steps; this file bounds what it can cost
// otherwise, so that no module can take the machine's memory or crash
// nexis with a Go stack overflow (which no recover catches):
//
//   - Memory: while the evaluation runs, a watchdog samples the heap;
//     past --max-memory more than when it started, it cancels every
//     running Starlark thread (packages evaluate in parallel), each of
//     which fails at its next step with an error naming the file and
//     line it had reached.
//   - One step that allocates a lot before the next one: repeating a
//     string or a list (`[0] * 1000000000`) is checked before it
//     allocates, as are str(), repr(), print(), fail(), `%` and json of
//     a value (its depth and printed size, see builtins.Measure), so the
//     common ways get an error with a position.
//   - Whatever else one step can do (a builtin method that copies a
//     huge value, a tuple nested millions deep hashed as a dict key) is
//     caught by the same watchdog: past twice --max-memory, or a Go stack
//     past maxStack, Options.Runaway is called (nexis prints an error and
//     exits), since nothing can stop the step in between.
//   - A panic inside the evaluation becomes an internal error.

// DefaultMaxMemory bounds the memory one evaluation may allocate. A
// config of 10,000 packages needs about a tenth of it.
const DefaultMaxMemory = 2 << 30

// maxStack is the Go stack an evaluation may use before the watchdog
// stops it: the runtime dies at 1 GB, and honest evaluations use well
// under a megabyte.
const maxStack = 256 << 20

// watchEvery is how often the watchdog samples the heap: reading the
// runtime's metrics takes a microsecond.
const watchEvery = 5 * time.Millisecond

// memory returns the bytes of heap objects and of goroutine stacks.
func memory() (heap, stacks uint64) {
	s := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
	}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// limitSteps stops thread after maxSteps steps.
func limitSteps(thread *starlark.Thread, maxSteps uint64) {
	thread.SetMaxExecutionSteps(maxSteps)
	thread.OnMaxSteps = func(t *starlark.Thread) {
		t.Cancel(fmt.Sprintf("evaluation took more than %d steps: look for an endless loop or a huge range()", maxSteps))
	}
}

// run runs f, a part of the evaluation on ev.thread (loading the config's
// modules, an expression), under the watchdog, turning a panic into an
// error.
func (ev *evaluator) run(f func() error) (err error) {
	stop := watch(ev.cancelAll, ev.opts.MaxMemory, ev.opts.Runaway)
	defer stop()
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Msg: fmt.Sprintf("internal error: nexis failed while evaluating (%v); please report it with the config that caused it", r)}
		}
	}()
	return f()
}

// watch samples the heap and the stacks until stopped: past maxMemory of
// growth it cancels thread; past what a cancel can stop it calls runaway
// (if set), once.
func watch(cancel func(reason string), maxMemory int64, runaway func(msg string)) (stop func()) {
	base, _ := memory()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(watchEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			heap, stacks := memory()
			// The heap at the start may hold garbage of earlier work that
			// a collection frees during the evaluation: growth counts from
			// the lowest heap seen.
			base = min(base, heap)
			grown := int64(heap - base)
			if grown > maxMemory {
				cancel(fmt.Sprintf("evaluation used more than %s of memory (the limit of --max-memory): look for a list or string that grows without end", builtins.FormatBytes(maxMemory)))
			}
			if runaway == nil {
				continue
			}
			switch {
			case grown > 2*maxMemory:
				runaway(fmt.Sprintf("evaluation stopped: one step allocated more than %s, twice the limit of --max-memory (a builtin given a huge value, such as list.extend(range(10000000000)))", builtins.FormatBytes(2*maxMemory)))
				return
			case stacks > maxStack:
				runaway(fmt.Sprintf("evaluation stopped: it used more than %s of Go stack, walking a value nested millions of levels deep (--max-depth bounds the nesting nexis checks)", builtins.FormatBytes(maxStack)))
				return
			}
		}
	}()
	return func() { close(done) }
}

// Names of the builtins the lowering calls: '·' cannot be written in a
// Starlark identifier, so no module can name or shadow them.
const (
	mulName      = "·mul"
	modName      = "·mod"
	mulIndexName = "·mul_index"
	mulAttrName  = "·mul_attr"
)

// LowerFile rewrites the operators that can allocate without bound in one
// step into calls of builtins that check first: x * y, x % y, and x *= y
// (whose target is evaluated once, as the interpreter would). Every
// program nexis runs is lowered: modules, -e expressions, the repl.
func LowerFile(f *syntax.File) { lowerStmts(f.Stmts) }

// LowerExpr is LowerFile for an expression.
func LowerExpr(e syntax.Expr) syntax.Expr { return lowerExpr(e) }

func lowerStmts(list []syntax.Stmt) {
	for i, s := range list {
		list[i] = lowerStmt(s)
	}
}

func lowerStmt(s syntax.Stmt) syntax.Stmt {
	switch s := s.(type) {
	case *syntax.AssignStmt:
		s.LHS = lowerExpr(s.LHS)
		s.RHS = lowerExpr(s.RHS)
		if s.Op != syntax.STAR_EQ {
			return s
		}
		switch lhs := s.LHS.(type) {
		case *syntax.Ident:
			s.Op = syntax.EQ
			s.RHS = call(s.OpPos, mulName, lhs, s.RHS)
		case *syntax.IndexExpr:
			return &syntax.ExprStmt{X: call(s.OpPos, mulIndexName, lhs.X, lhs.Y, s.RHS)}
		case *syntax.DotExpr:
			name := &syntax.Literal{Token: syntax.STRING, TokenPos: lhs.NamePos, Raw: fmt.Sprintf("%q", lhs.Name.Name), Value: lhs.Name.Name}
			return &syntax.ExprStmt{X: call(s.OpPos, mulAttrName, lhs.X, name, s.RHS)}
		}
	case *syntax.DefStmt:
		for i, p := range s.Params {
			s.Params[i] = lowerExpr(p)
		}
		lowerStmts(s.Body)
	case *syntax.ExprStmt:
		s.X = lowerExpr(s.X)
	case *syntax.ForStmt:
		s.Vars = lowerExpr(s.Vars)
		s.X = lowerExpr(s.X)
		lowerStmts(s.Body)
	case *syntax.WhileStmt:
		s.Cond = lowerExpr(s.Cond)
		lowerStmts(s.Body)
	case *syntax.IfStmt:
		s.Cond = lowerExpr(s.Cond)
		lowerStmts(s.True)
		lowerStmts(s.False)
	case *syntax.ReturnStmt:
		if s.Result != nil {
			s.Result = lowerExpr(s.Result)
		}
	}
	return s
}

func lowerExprs(list []syntax.Expr) {
	for i, e := range list {
		list[i] = lowerExpr(e)
	}
}

func lowerExpr(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case *syntax.BinaryExpr:
		e.X = lowerExpr(e.X)
		e.Y = lowerExpr(e.Y)
		switch e.Op {
		case syntax.STAR:
			return call(e.OpPos, mulName, e.X, e.Y)
		case syntax.PERCENT:
			return call(e.OpPos, modName, e.X, e.Y)
		}
	case *syntax.CallExpr:
		e.Fn = lowerExpr(e.Fn)
		lowerExprs(e.Args)
	case *syntax.Comprehension:
		e.Body = lowerExpr(e.Body)
		for _, c := range e.Clauses {
			switch c := c.(type) {
			case *syntax.ForClause:
				c.Vars = lowerExpr(c.Vars)
				c.X = lowerExpr(c.X)
			case *syntax.IfClause:
				c.Cond = lowerExpr(c.Cond)
			}
		}
	case *syntax.CondExpr:
		e.Cond = lowerExpr(e.Cond)
		e.True = lowerExpr(e.True)
		e.False = lowerExpr(e.False)
	case *syntax.DictEntry:
		e.Key = lowerExpr(e.Key)
		e.Value = lowerExpr(e.Value)
	case *syntax.DictExpr:
		lowerExprs(e.List)
	case *syntax.DotExpr:
		e.X = lowerExpr(e.X)
	case *syntax.IndexExpr:
		e.X = lowerExpr(e.X)
		e.Y = lowerExpr(e.Y)
	case *syntax.LambdaExpr:
		lowerExprs(e.Params)
		e.Body = lowerExpr(e.Body)
	case *syntax.ListExpr:
		lowerExprs(e.List)
	case *syntax.ParenExpr:
		e.X = lowerExpr(e.X)
	case *syntax.SliceExpr:
		e.X = lowerExpr(e.X)
		for _, p := range []*syntax.Expr{&e.Lo, &e.Hi, &e.Step} {
			if *p != nil {
				*p = lowerExpr(*p)
			}
		}
	case *syntax.TupleExpr:
		lowerExprs(e.List)
	case *syntax.UnaryExpr:
		if e.X != nil {
			e.X = lowerExpr(e.X)
		}
	}
	return e
}

// call makes fn(args...) at pos, so errors point at the operator.
func call(pos syntax.Position, fn string, args ...syntax.Expr) *syntax.CallExpr {
	return &syntax.CallExpr{
		Fn:     &syntax.Ident{NamePos: pos, Name: fn},
		Lparen: pos,
		Args:   args,
		Rparen: pos,
	}
}

// guardedBuiltins are the builtins the lowering calls and the universe's
// builtins that print a value, each checking its arguments first.
func guardedBuiltins(lim builtins.Limits) starlark.StringDict {
	wrap := func(b *starlark.Builtin) *starlark.Builtin {
		return starlark.NewBuiltin(b.Name(), func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if err := builtins.CheckArgs(lim, args, kwargs); err != nil {
				return nil, fmt.Errorf("%s: %w", b.Name(), err)
			}
			return starlark.Call(thread, b, args, kwargs)
		})
	}
	d := starlark.StringDict{
		mulName: starlark.NewBuiltin("*", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
			return multiply(args[0], args[1], lim)
		}),
		modName: starlark.NewBuiltin("%", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
			if _, ok := args[0].(starlark.String); ok {
				if err := builtins.Measure(args[1], lim); err != nil {
					return nil, fmt.Errorf("%%: %w", err)
				}
			}
			return starlark.Binary(syntax.PERCENT, args[0], args[1])
		}),
		mulIndexName: starlark.NewBuiltin("*=", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
			return starlark.None, multiplyIndex(args[0], args[1], args[2], lim)
		}),
		mulAttrName: starlark.NewBuiltin("*=", func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
			return starlark.None, multiplyAttr(args[0], string(args[1].(starlark.String)), args[2], lim)
		}),
	}
	for _, name := range []string{"str", "repr", "print", "fail"} {
		d[name] = wrap(starlark.Universe[name].(*starlark.Builtin))
	}
	members := starlark.StringDict{}
	for name, v := range json.Module.Members {
		members[name] = wrap(v.(*starlark.Builtin))
	}
	encode := members["encode"]
	members["encode"] = starlark.NewBuiltin("json.encode", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if len(args) == 1 && len(kwargs) == 0 {
			if err := builtins.CheckArgs(lim, args, nil); err != nil {
				return nil, fmt.Errorf("json.encode: %w", err)
			}
			if s, ok := encodeJSON(args[0]); ok {
				return starlark.String(s), nil
			}
		}
		return starlark.Call(thread, encode, args, kwargs)
	})
	decode := members["decode"]
	members["decode"] = starlark.NewBuiltin("json.decode", func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if len(args) > 0 {
			if s, ok := args[0].(starlark.String); ok && jsonDepth(string(s)) > lim.MaxDepth {
				return nil, fmt.Errorf("json.decode: %w", &builtins.TooDeepError{Max: lim.MaxDepth})
			}
		}
		return starlark.Call(thread, decode, args, kwargs)
	})
	d["json"] = &starlarkstruct.Module{Name: "json", Members: members}
	return d
}

// multiply is x * y, refusing a repetition larger than the limit before
// it is allocated (the interpreter allows a billion elements: 16 GB).
func multiply(x, y starlark.Value, lim builtins.Limits) (starlark.Value, error) {
	seq, n := x, y
	if _, ok := x.(starlark.Int); ok {
		seq, n = y, x
	}
	if count, ok := n.(starlark.Int); ok {
		var per int64
		switch s := seq.(type) {
		case starlark.String:
			per = int64(len(s))
		case starlark.Bytes:
			per = int64(len(s))
		case *starlark.List:
			per = 16 * int64(s.Len())
		case starlark.Tuple:
			per = 16 * int64(len(s))
		}
		if c, ok := count.Int64(); per > 0 && (!ok && count.Sign() > 0 || c > 0 && (c > lim.MaxBytes || per*c > lim.MaxBytes)) {
			unit := "elements"
			if seq.Type() == "string" || seq.Type() == "bytes" {
				unit = "bytes"
			}
			return nil, fmt.Errorf("repeating a %s of %d %s %s times would take more than %s (the limit of --max-memory)", seq.Type(), starlark.Len(seq), unit, count, builtins.FormatBytes(lim.MaxBytes))
		}
	}
	return starlark.Binary(syntax.STAR, x, y)
}

// multiplyIndex is x[i] *= y.
func multiplyIndex(x, i, y starlark.Value, lim builtins.Limits) error {
	var old starlark.Value
	switch c := x.(type) {
	case starlark.Mapping:
		v, found, err := c.Get(i)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("key %s not in %s", shortRepr(i), x.Type())
		}
		old = v
	case starlark.Indexable:
		k, err := goIndex(c, i)
		if err != nil {
			return err
		}
		old = c.Index(k)
	default:
		return fmt.Errorf("unhandled index operation %s[%s]", x.Type(), i.Type())
	}
	v, err := multiply(old, y, lim)
	if err != nil {
		return err
	}
	switch c := x.(type) {
	case starlark.HasSetKey:
		return c.SetKey(i, v)
	case starlark.HasSetIndex:
		k, err := goIndex(c, i)
		if err != nil {
			return err
		}
		return c.SetIndex(k, v)
	}
	return fmt.Errorf("%s value does not support item assignment", x.Type())
}

// index converts a Starlark index (negative from the end) into a Go one.
func goIndex(c starlark.Indexable, i starlark.Value) (int, error) {
	n, ok := i.(starlark.Int)
	if !ok {
		return 0, fmt.Errorf("%s index: got %s, want int", c.Type(), i.Type())
	}
	k, ok := n.Int64()
	if ok && k < 0 {
		k += int64(c.Len())
	}
	if !ok || k < 0 || k >= int64(c.Len()) {
		return 0, fmt.Errorf("%s index %s out of range [%d:%d]", c.Type(), n, -c.Len(), c.Len())
	}
	return int(k), nil
}

// multiplyAttr is x.name *= y.
func multiplyAttr(x starlark.Value, name string, y starlark.Value, lim builtins.Limits) error {
	h, ok := x.(starlark.HasAttrs)
	if !ok {
		return fmt.Errorf("%s has no .%s field or method", x.Type(), name)
	}
	old, err := h.Attr(name)
	if err != nil {
		return err
	}
	if old == nil {
		return fmt.Errorf("%s has no .%s field or method", x.Type(), name)
	}
	v, err := multiply(old, y, lim)
	if err != nil {
		return err
	}
	s, ok := x.(starlark.HasSetField)
	if !ok {
		return fmt.Errorf("can't assign to .%s field of %s", name, x.Type())
	}
	return s.SetField(name, v)
}

func shortRepr(v starlark.Value) string {
	if builtins.Measure(v, builtins.Limits{MaxDepth: 8, MaxBytes: 200}) != nil {
		return "(a " + v.Type() + ")"
	}
	return v.String()
}

// jsonDepth is how deeply the arrays and objects of a JSON text nest.
func jsonDepth(s string) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}
