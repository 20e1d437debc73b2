// Package hint spells the nexis commands that errors and reports
// suggest as the user must type them: with the --root, --store and
// --state the running command was given, and -c CONFIG for a verb that
// takes the config the user named. A hint copied from the output then
// acts on the same system, never on this machine's own / by surprise.
package hint

import "strings"

var (
	global []string
	config string
)

// SetGlobal records the global options (flag, value pairs) the running
// command was given; main calls it once, before any hint is made.
func SetGlobal(flags ...string) { global = flags }

// SetConfig records the config file the user named on the command line.
func SetConfig(path string) { config = path }

// Command is the command line `nexis [global options] verb args...`;
// update, which reads the system's config unless told, gets -c CONFIG.
func Command(verb string, args ...string) string {
	w := []string{"nexis"}
	for _, g := range global {
		w = append(w, Quote(g))
	}
	w = append(w, strings.Fields(verb)...)
	if verb == "update" && config != "" {
		w = append(w, "-c", Quote(config))
	}
	for _, a := range args {
		w = append(w, Quote(a))
	}
	return strings.Join(w, " ")
}

// Quote quotes s for a POSIX shell when it holds anything but letters,
// digits and -_./=:@+,%.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@+,%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
