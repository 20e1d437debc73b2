// Package stdlib embeds the Starlark standard library of nexis: build
// helpers and one module per section of the system config. Modules are
// loaded as load("@stdlib//name.star", ...).
package stdlib

import "embed"

// FS holds the stdlib modules.
//
//go:embed *.star
var FS embed.FS
