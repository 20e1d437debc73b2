package builtins

import (
	"fmt"
	"math"
	"testing"

	"go.starlark.net/starlark"
)

// TestLeafSizeOfInts: an integer's printed size is counted without
// printing it.
func TestLeafSizeOfInts(t *testing.T) {
	for _, i := range []int64{0, 9, 10, -1, -9, -10, -11, 99, 100, 12345, math.MaxInt64, math.MinInt64, math.MinInt64 + 1} {
		if got, want := leafSize(starlark.MakeInt64(i)), int64(len(fmt.Sprint(i))); got != want {
			t.Errorf("%d: %d, want %d", i, got, want)
		}
	}
}

// TestQuickMeasureAgrees: the quick walk and the exact measure accept
// and refuse the same values.
func TestQuickMeasureAgrees(t *testing.T) {
	shared := starlark.NewList([]starlark.Value{starlark.String("abc"), starlark.MakeInt(12)})
	d := starlark.NewDict(2)
	_ = d.SetKey(starlark.String("k"), shared)
	_ = d.SetKey(starlark.String("e"), starlark.Tuple{})
	values := []starlark.Value{
		starlark.String("x"), starlark.Tuple{}, shared, d,
		starlark.NewList([]starlark.Value{shared, shared, d}),
		starlark.Tuple{d, d, starlark.None},
	}
	nested := starlark.Value(starlark.String("leaf"))
	for range 12 {
		nested = starlark.NewList([]starlark.Value{nested, nested})
		values = append(values, nested)
	}
	for _, v := range values {
		for _, lim := range []Limits{{MaxDepth: 3, MaxBytes: 40}, {MaxDepth: 5, MaxBytes: 200}, {MaxDepth: 100, MaxBytes: 1 << 20}} {
			budget := 1 << 30
			size, ok := quickMeasure(v, lim, 1, &budget)
			quick := ok && size <= lim.MaxBytes
			exact := measureExact(v, lim) == nil
			if quick && !exact {
				t.Errorf("%s under %+v: the quick walk accepts what the exact measure refuses", v.Type(), lim)
			}
			if ok && !quick == exact {
				t.Errorf("%s under %+v: size %d, quick %v, exact %v", v.Type(), lim, size, quick, exact)
			}
		}
	}
}
