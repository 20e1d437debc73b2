package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/internal/progress"
	"github.com/nexisos/nexis/realise"
)

// What every command shares: reading ages and sizes from flags, and
// printing sizes, JSON and progress.

// parseAge reads Go durations (90m, 12h) and days or weeks (30d, 2w).
func parseAge(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(t, suffix); ok {
			v, err := strconv.ParseFloat(n, 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("%q is not a duration: want e.g. 90m, 12h, 30d or 2w", s)
			}
			return time.Duration(v * float64(unit)), nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration: want e.g. 90m, 12h, 30d or 2w", s)
	}
	return d, nil
}

// parseSize reads 1024, 500K, 500M, 10G, 1T (powers of 1024; a trailing
// "B" or "iB" is accepted).
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult > 1 {
			t = t[:len(t)-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("%q is not a size: want a positive number of bytes, optionally with K, M, G or T", s)
	}
	return int64(v * float64(mult)), nil
}

// asJSON is --json of the command that runs.
var asJSON bool

// jsonFlag gives cmd --json, described as usage.
func jsonFlag(cmd *cobra.Command, usage string) {
	cmd.Flags().BoolVar(&asJSON, "json", false, usage)
}

// show prints a command's result on stdout: JSON with --json, else its
// text form.
func show[T interface{ Print(io.Writer) }](v T, err error) error {
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(v)
	}
	v.Print(os.Stdout)
	return nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newProgress is the progress line of an operation on stderr: none
// when it is not a terminal, or under -q.
func newProgress(what string) *progress.Bar {
	if here.Verbosity <= realise.Quiet {
		return nil
	}
	return progress.New(os.Stderr, what)
}
