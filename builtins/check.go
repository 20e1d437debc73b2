package builtins

import (
	"errors"

	"go.starlark.net/starlark"
)

// Checks returns the builtins the stdlib's section modules use to report
// a failure at the config key that caused it rather than inside the
// stdlib: a template that names an undefined variable, a hook script
// that does not exist. Starlark has no try; try_call is the one place an
// error becomes a value.
func Checks() starlark.StringDict {
	return starlark.StringDict{
		"try_call": starlark.NewBuiltin("try_call", tryCall),
	}
}

var errTryCall = errors.New("try_call: want a function and its arguments: try_call(f, *args, **kwargs)")

// tryCall calls f(*args, **kwargs) and returns (result, None), or
// (None, message) when the call fails: try_call(template, "x.tpl", vars).
func tryCall(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if len(args) < 1 {
		return nil, errTryCall
	}
	f, ok := args[0].(starlark.Callable)
	if !ok {
		return nil, errTryCall
	}
	v, err := starlark.Call(thread, f, args[1:], kwargs)
	if err != nil {
		msg := err.Error()
		var ee *starlark.EvalError
		if errors.As(err, &ee) {
			msg = ee.Msg
		}
		return starlark.Tuple{starlark.None, starlark.String(msg)}, nil
	}
	return starlark.Tuple{v, starlark.None}, nil
}
