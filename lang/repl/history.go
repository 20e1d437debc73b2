package repl

import (
	"os"
	"path/filepath"
)

// HistoryFile is where the repl keeps its history, by the XDG base
// directory spec, like most shells' ("" when there is no home).
func HistoryFile() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "nexis", "repl_history")
}
