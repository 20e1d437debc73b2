package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
)

var genFlags struct {
	olderThan string
	dryRun    bool
}

var generationsCmd = &cobra.Command{Use: "generations"}

func init() {
	list := command("list", cobra.NoArgs, func(cmd *cobra.Command, args []string) error {
		return here.WithTargetRead(func(t *activate.Target) error { return show(t.ListGenerations()) })
	})
	jsonFlag(list, "print JSON")
	diff := command("diff A B", cobra.ExactArgs(2), func(cmd *cobra.Command, args []string) error {
		return here.WithTargetRead(func(t *activate.Target) error { return show(t.DiffGenerations(args[0], args[1])) })
	})
	jsonFlag(diff, "print JSON")
	del := command("delete N... | --older-than D", nil, runGenDelete)
	del.Flags().BoolVar(&genFlags.dryRun, "dry-run", false, "print the generations that would be deleted, and change nothing")
	del.Flags().StringVar(&genFlags.olderThan, "older-than", "", "delete generations older than `D` (90m, 12h, 30d, 2w)")
	pin := command("pin N...", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error { return runGenPin(args, true) })
	unpin := command("unpin N...", cobra.MinimumNArgs(1), func(cmd *cobra.Command, args []string) error { return runGenPin(args, false) })
	register(generationsCmd, list, diff, del, pin, unpin)
	register(rootCmd, generationsCmd)
}

func runGenDelete(cmd *cobra.Command, args []string) error {
	if (len(args) == 0) == (genFlags.olderThan == "") {
		return fmt.Errorf("name the generations to delete, or give --older-than (not both)")
	}
	var age *time.Duration
	if genFlags.olderThan != "" {
		d, err := parseAge(genFlags.olderThan)
		if err != nil {
			return fmt.Errorf("--older-than: %w", err)
		}
		age = &d
	}
	return here.WithTarget(func(t *activate.Target) error {
		r, err := t.DeleteNamed(args, age, time.Now(), genFlags.dryRun)
		if r != nil {
			r.Print(os.Stdout)
		}
		return err
	})
}

func runGenPin(args []string, pinned bool) error {
	return here.WithTarget(func(t *activate.Target) error {
		ns, err := t.PinGenerations(args, pinned)
		if err != nil {
			return err
		}
		verb := "pinned"
		if !pinned {
			verb = "unpinned"
		}
		fmt.Printf("%s generation(s) %v\n", verb, ns)
		return nil
	})
}
