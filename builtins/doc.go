// Package builtins holds the Go-implemented Starlark builtins of nexis and
// the values they return: Derivation (a build step with a BLAKE3 identity)
// and Source (a local file or directory hashed by content).
//
// # Canonical encoding of a derivation
//
// A derivation's identity is BLAKE3-256 over the bytes "nexis-drv-1\x00"
// followed by its canonical encoding: one line of JSON, UTF-8, no
// insignificant white space, no HTML escaping, object keys in this fixed
// order (absent optional keys are omitted, never null):
//
//	{"name":S,"version":S,"system":S,"store":S,"builder":S,"args":[S...],
//	 "env":{K:S...},"inputs":{"drvs":[{"id":H,"outputs":[S...]}...],
//	 "srcs":[{"path":P,"hash":H}...]},"outputs":[S...],
//	 "fixed":{"algo":"sha256"|"blake3","hash":H,"unpack":B}}
//
// env is sorted by key (byte order); drvs by id, srcs by path, each
// input derivation's outputs by name; outputs keep the order given (the
// first is the main one, "out" by default). "store" is the logical store
// directory, so a relocated store gives other paths, as it must: paths are
// written into files. Nothing machine-specific enters the encoding: no
// absolute path of the config, no time, no environment variable.
// Attributes that only describe a derivation (passthru, timeout) are kept
// out of the identity.
//
// # Output paths
//
// The hash part of output o of a derivation with identity I and full name
// N ("<name>-<version>", or "<name>" with an empty version) is
// storepath.EncodeHash(BLAKE3("nexis-out-1:" + o + ":" + I)); the path is
// "<store>/<h0h1>/<h2h3>/<hash>-N" for "out" and "...-N-o" for other
// outputs. A fixed-output derivation (fetch_url, fetch_git) instead hashes
// "nexis-fixed-1:" + algo + ":" + hash + ":" + unpack + ":" + store + ":" + N,
// so its path depends only on what it produces, not on where it came from.
// A source path(...) gets the content-addressed path `nexis store add`
// gives the same tree under the same name (treehash.ContentPath).
//
// # Inputs
//
// A derivation's inputs are those given in inputs= plus every derivation
// or source of the same evaluation whose store path is mentioned in the
// builder, args or env: string interpolation of a derivation yields its
// output path, and that is enough to depend on it.
package builtins
