package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Go code that walks a Starlark value (str(), json.encode, freezing,
// ToGo for a template, the encoding of a derivation) recurses once per
// level of nesting and visits a value shared by two containers twice: a
// list nested ten million deep overflowed the Go stack, which no recover
// catches, and thirty rounds of x = [x, x] print as a billion elements.
// So before such a walk a value is measured here, by a loop that visits
// each container once and keeps its own stack, and refused when it nests
// too deep or would print too large.

// Limits bound the values an evaluation hands to Go code.
type Limits struct {
	MaxDepth int   // levels of nesting
	MaxBytes int64 // bytes of a value printed, or of one repeated
}

// TooDeepError reports a value nested deeper than the limit.
type TooDeepError struct{ Max int }

func (e *TooDeepError) Error() string {
	return fmt.Sprintf("the value nests more than %d deep (the limit of --max-depth): flatten it", e.Max)
}

// TooLargeError reports a value that would print larger than the limit.
type TooLargeError struct{ Max int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the value would take more than %s as text (the limit of --max-memory)", FormatBytes(e.Max))
}

// FormatBytes writes a byte count for people.
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

type measured struct {
	depth int
	size  int64
}

// frame is a container being measured: its children, the next one to
// visit, and what its children measured so far.
type frame struct {
	key  any
	kids func(i int) starlark.Value
	n    int
	i    int
	m    measured
}

// CheckArgs measures every argument of a builtin call.
func CheckArgs(lim Limits, args starlark.Tuple, kwargs []starlark.Tuple) error {
	for _, a := range args {
		if err := Measure(a, lim); err != nil {
			return err
		}
	}
	for _, kv := range kwargs {
		if err := Measure(kv[1], lim); err != nil {
			return fmt.Errorf("%s: %w", string(kv[0].(starlark.String)), err)
		}
	}
	return nil
}

// Measure checks that v nests at most lim.MaxDepth deep and prints in at
// most lim.MaxBytes, in time linear in the number of distinct containers.
func Measure(v starlark.Value, lim Limits) error {
	// Almost every value a builtin gets is a small tree: walked as one,
	// within a budget of visits, it needs none of the bookkeeping below.
	// A value the quick walk cannot clear (too deep, too large, shared
	// or cyclic past the budget) is measured again, as exactly as ever.
	budget := quickBudget
	if size, ok := quickMeasure(v, lim, 1, &budget); ok && size <= lim.MaxBytes {
		return nil
	}
	return measureExact(v, lim)
}

// measureExact is Measure without the quick walk.
func measureExact(v starlark.Value, lim Limits) error {
	if j, ok := v.(*JSONText); ok {
		return j.check(0, lim)
	}
	if key, _, _ := container(v); key == nil {
		if leafSize(v) > lim.MaxBytes {
			return &TooLargeError{lim.MaxBytes}
		}
		return nil
	}
	memo := map[any]measured{}
	onStack := map[any]bool{}
	var stack []*frame
	push := func(v starlark.Value) (measured, bool, error) {
		if j, ok := v.(*JSONText); ok {
			return j.m, true, j.check(len(stack), lim)
		}
		if len(stack)+1 < lim.MaxDepth {
			if m, ok := smallLeaves(v, lim); ok {
				return m, true, nil
			}
		}
		key, kids, n := container(v)
		if key == nil {
			return measured{size: leafSize(v)}, true, nil
		}
		if m, ok := memo[key]; ok {
			return m, true, nil
		}
		if onStack[key] {
			return measured{size: 5}, true, nil // a cycle prints as [...]
		}
		if len(stack) >= lim.MaxDepth {
			return measured{}, false, &TooDeepError{lim.MaxDepth}
		}
		onStack[key] = true
		stack = append(stack, &frame{key: key, kids: kids, n: n, m: measured{depth: 1, size: 2}})
		return measured{}, false, nil
	}
	m, done, err := push(v)
	if err != nil {
		return err
	}
	for !done {
		top := stack[len(stack)-1]
		if top.i < top.n {
			c := top.kids(top.i)
			top.i++
			cm, ok, err := push(c)
			if err != nil {
				return err
			}
			if ok {
				top.m = combine(top.m, cm)
			}
		} else {
			stack = stack[:len(stack)-1]
			delete(onStack, top.key)
			memo[top.key] = top.m
			if len(stack) == 0 {
				m, done = top.m, true
			} else {
				parent := stack[len(stack)-1]
				parent.m = combine(parent.m, top.m)
			}
		}
		if top.m.size > lim.MaxBytes {
			return &TooLargeError{lim.MaxBytes}
		}
	}
	if m.size > lim.MaxBytes {
		return &TooLargeError{lim.MaxBytes}
	}
	return nil
}

// quickBudget bounds the containers quickMeasure visits.
const quickBudget = 256

// quickMeasure is the printed size of v walked as a tree, if it nests at
// most lim.MaxDepth deep (depth is v's own level) and holds at most
// *budget containers counted with repetition; ok is false otherwise.
func quickMeasure(v starlark.Value, lim Limits, depth int, budget *int) (size int64, ok bool) {
	if t, ok := v.(starlark.Tuple); ok && len(t) == 0 {
		return leafSize(v), true // as container() has it
	}
	switch x := v.(type) {
	case *starlark.List, starlark.Tuple, *starlark.Dict:
		if *budget--; *budget < 0 || depth > lim.MaxDepth {
			return 0, false
		}
		n := int64(2)
		switch x := x.(type) {
		case *starlark.List:
			for i := range x.Len() {
				s, ok := quickMeasure(x.Index(i), lim, depth+1, budget)
				if !ok {
					return 0, false
				}
				n = min(n+s+2, 1<<62)
			}
		case starlark.Tuple:
			for _, e := range x {
				s, ok := quickMeasure(e, lim, depth+1, budget)
				if !ok {
					return 0, false
				}
				n = min(n+s+2, 1<<62)
			}
		case *starlark.Dict:
			// Items, not Entries: its closures would take n and budget
			// to the heap, on every call of every builtin.
			for _, kv := range x.Items() {
				k, e := kv[0], kv[1]
				sk, ok := quickMeasure(k, lim, depth+1, budget)
				if !ok {
					return 0, false
				}
				se, ok := quickMeasure(e, lim, depth+1, budget)
				if !ok {
					return 0, false
				}
				n = min(n+sk+se+4, 1<<62)
			}
		}
		return n, n <= lim.MaxBytes
	case *starlark.Set, *starlarkstruct.Struct, *JSONText:
		return 0, false
	}
	return leafSize(v), true
}

// smallLeaves measures a container of at most 8 elements that holds no
// containers as the walk below would, without its bookkeeping: most
// containers of a large value are such (a package's entry in a
// manifest). ok is false for anything else, or past the limit.
func smallLeaves(v starlark.Value, lim Limits) (measured, bool) {
	m := measured{depth: 1, size: 2}
	add := func(c starlark.Value) bool {
		if isContainer(c) {
			// An empty list or dict measures as the walk would.
			if l, ok := c.(*starlark.List); ok && l.Len() == 0 {
				m = combine(m, measured{depth: 1, size: 2})
				return true
			}
			if d, ok := c.(*starlark.Dict); ok && d.Len() == 0 {
				m = combine(m, measured{depth: 1, size: 2})
				return true
			}
			return false
		}
		m = combine(m, measured{size: leafSize(c)})
		return true
	}
	switch x := v.(type) {
	case *starlark.List:
		if x.Len() > 8 {
			return m, false
		}
		for i := range x.Len() {
			if !add(x.Index(i)) {
				return m, false
			}
		}
	case starlark.Tuple:
		if len(x) == 0 || len(x) > 8 {
			return m, false
		}
		for _, e := range x {
			if !add(e) {
				return m, false
			}
		}
	case *starlark.Dict:
		if x.Len() > 8 {
			return m, false
		}
		for _, kv := range x.Items() {
			if !add(kv[0]) || !add(kv[1]) {
				return m, false
			}
		}
	default:
		return m, false
	}
	return m, m.size <= lim.MaxBytes
}

// isContainer says whether container() walks into v.
func isContainer(v starlark.Value) bool {
	switch x := v.(type) {
	case *starlark.List, *starlark.Dict, *starlark.Set, *starlarkstruct.Struct, *JSONText:
		return true
	case starlark.Tuple:
		return len(x) > 0
	}
	return false
}

// combine adds a child's measure to its container's: one level deeper,
// its size and a separator (", " between elements, ": " in a dict).
func combine(parent, child measured) measured {
	parent.depth = max(parent.depth, child.depth+1)
	parent.size = min(parent.size+child.size+2, 1<<62)
	return parent
}

// container returns an identity, the children and their number for the
// values Go code walks into; key is nil for a value walked as a whole.
func container(v starlark.Value) (key any, kids func(int) starlark.Value, n int) {
	switch x := v.(type) {
	case *starlark.List:
		return x, func(i int) starlark.Value { return x.Index(i) }, x.Len()
	case starlark.Tuple:
		if len(x) == 0 {
			return nil, nil, 0
		}
		return tupleKey{&x[0], len(x)}, func(i int) starlark.Value { return x[i] }, len(x)
	case *starlark.Dict:
		items := x.Items()
		return x, func(i int) starlark.Value { return items[i/2][i%2] }, 2 * len(items)
	case *starlark.Set:
		var elems []starlark.Value
		for e := range starlark.Elements(x) {
			elems = append(elems, e)
		}
		return x, func(i int) starlark.Value { return elems[i] }, len(elems)
	case *starlarkstruct.Struct:
		names := x.AttrNames()
		return x, func(i int) starlark.Value {
			f, _ := x.Attr(names[i])
			return f
		}, len(names)
	}
	return nil, nil, 0
}

type tupleKey struct {
	first *starlark.Value
	n     int
}

// leafSize estimates the printed size of a value that holds no others.
func leafSize(v starlark.Value) int64 {
	switch x := v.(type) {
	case starlark.String:
		return stringSize(string(x))
	case starlark.Bytes:
		return int64(len(x)) + 3
	case starlark.Int:
		if i, ok := x.Int64(); ok {
			n, u := int64(1), uint64(i)
			if i < 0 {
				n, u = 2, uint64(-(i+1))+1
			}
			for ; u >= 10; u /= 10 {
				n++
			}
			return n
		}
		return int64(x.BigInt().BitLen()/3 + 2)
	}
	return 32
}

// check refuses j where the walk above would refuse the value it stands
// for, found below a stack of depth containers: that value's deepest
// container is pushed at depth + j.m.depth - 1. Past both limits, the
// walk meets the depth first: it enters the first entry before it has
// added up the rest.
func (j *JSONText) check(depth int, lim Limits) error {
	if depth+j.m.depth > lim.MaxDepth {
		return &TooDeepError{lim.MaxDepth}
	}
	if j.m.size > lim.MaxBytes {
		return &TooLargeError{lim.MaxBytes}
	}
	return nil
}

// stringSize is leafSize of a string, for Go code that has not made one.
func stringSize(s string) int64 { return int64(len(s)) + 2 }
