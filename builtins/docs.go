package builtins

// Docs are the docstrings of the Go builtins, by name: what `:doc NAME`
// in the repl and docs/builtins.md show. Starlark functions carry their
// own docstrings; these are the ones Go cannot attach to a Builtin.
var Docs = map[string]string{
	"derivation": `derivation(name, builder, version = "", args = [], env = {}, inputs = None, outputs = ["out"], passthru = {}, timeout = 0)

A build step: builder run with args and env in a sandbox that sees only
inputs' closures. Its identity is the BLAKE3 hash of its canonical
encoding (passthru and timeout are not part of it); a string in env or
args that names another derivation's output makes that derivation an
input.`,
	"fetch_url": `fetch_url(url, sha256 = "", blake3 = "", unpack = False, name = "", passthru = {})

A fixed-output download: named by the content's hash (sha256 or blake3,
one of them required), checked wherever the bytes arrive. unpack = True
unpacks an archive into a tree.`,
	"fetch_git": `fetch_git(url, rev, hash = "", name = "", passthru = {})

A git checkout at commit rev (40 hex digits), fixed-output: hash is the
tree's hash, which ` + "`nexis update`" + ` pins in nexis.lock.`,
	"gather_packages": `gather_packages(packages)

What the system derivation takes from each package of packages (a dict
of name to derivation), gathered in Go, or None when a package is one
system.star's loops must see (not a derivation, runtime_dirs not a list
of strings): a struct of manifest, the manifest's "packages" entries
(name, version, path, runtime_dirs) as JSON text that json.encode writes
in place; wrappers, each package's output path to its truthy
runtime_env; runtime_dirs and context_files, the packages (name to
derivation) whose runtime_dirs is truthy, whose context_file is not
None.`,
	"generic_builder": `generic_builder(stdenv, tools, sandbox_paths, stdenv_error, libc_script, builder)

The generic builder of @stdlib//build.star, which every [[packages]]
entry builds with: the stdenv (a derivation, or None with stdenv_error
saying why), its tool layers by name, the host paths builds may see,
the script of the C runtime path and the builder script. Its methods
are the bodies of build_package and stdenv_derivation, which modules
call instead, and of the common case of packages.star's package().`,
	"path": `path(path, name = "", relative_to = "")

A file or directory of the config directory (relative to the calling
module, or to the config file relative_to names), added to the store by
its content. A path that leaves the config directory is an error.`,
	"write_file": `write_file(name, content, mode = 0o444, secret = False, passthru = {})

A store file with that content and mode. secret = True stores it
readable by root only (0400), for password hashes and keys.`,
	"template": `template(src, vars = {}, relative_to = "")

Renders the Go text/template file src ({{.name}}) with vars and returns
the text. A variable the template uses and vars lacks is an error.`,
	"struct": `struct(**kwargs)

An immutable value with the given fields as attributes: struct(a = 1).a.`,
	"json": `json

The JSON module: json.encode(value), json.decode(text),
json.indent(text).`,
	"try_call": `try_call(f, *args, **kwargs)

Calls f and returns (result, None), or (None, message) when f fails:
lets a module turn a builtin's error into a config error at a key.`,
}
