package builtins

import "strings"

// Builders that run inside nexis instead of a sandbox, and the env keys
// of their derivations: a contract between the builtins that make such
// derivations (fetch_url, fetch_git, write_file), the stdlib modules
// that name them (packages.star's builtin:copy, system.star's
// builtin:system and its env) and realise, which runs them.
const (
	BuilderPrefix    = "builtin:"
	BuilderFetchURL  = BuilderPrefix + "fetchurl"   // env url; a fixed output
	BuilderFetchGit  = BuilderPrefix + "fetchgit"   // env url, rev; a fixed output
	BuilderWriteFile = BuilderPrefix + "write_file" // env content, mode, secret
	BuilderCopy      = BuilderPrefix + "copy"       // env src
	BuilderSystem    = BuilderPrefix + "system"     // env etc, packages, wrappers, manifest, kernel
)

// Env keys of the builtin builders' derivations.
const (
	EnvURL      = "url"
	EnvRev      = "rev"
	EnvContent  = "content"
	EnvMode     = "mode"   // "%04o"
	EnvSecret   = "secret" // "1" for a secret
	EnvSrc      = "src"
	EnvEtc      = "etc"
	EnvPackages = "packages"
	EnvManifest = "manifest"
	EnvKernel   = "kernel"
	EnvWrappers = "wrappers" // JSON: package output path → its runtime env
)

// IsBuiltin reports whether builder runs inside nexis.
func IsBuiltin(builder string) bool { return strings.HasPrefix(builder, BuilderPrefix) }

// IsSecret reports whether d is marked as holding a secret
// (write_file(secret = True)): its output is readable by root only, and
// nothing prints its env in clear.
func (d *Derivation) IsSecret() bool { return d.Getenv(EnvSecret) == "1" }

// WritesSecret reports whether d writes a secret file, which the store
// keeps private (store.IngestOptions.Private).
func (d *Derivation) WritesSecret() bool { return d.Builder == BuilderWriteFile && d.IsSecret() }
