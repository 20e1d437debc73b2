package activatetest

import "go.starlark.net/starlark"

func starlarkString(s string) starlark.String { return starlark.String(s) }
