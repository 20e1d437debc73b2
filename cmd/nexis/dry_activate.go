package main

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
)

var dryFlags struct {
	json bool
}

func init() {
	cmd := &cobra.Command{
		Use:   "dry-activate [CONFIG]",
		Short: "Build the config and print what activating it would change",
		Long: `Evaluate and realise the config, then print every change activating it
would make to the root — /etc entries, account files, users, files,
services and the dinitctl calls — and change nothing.`,
		Args: cobra.MaximumNArgs(1),
		RunE: runDryActivate,
	}
	cmd.Flags().BoolVar(&dryFlags.json, "json", false, "print the plan as JSON")
	cmd.Flags().IntVarP(&actFlags.jobs, "jobs", "j", 0, "run `N` builds at once (default: the number of cores)")
	addActivateFlags(cmd)
	addEvalFlags(cmd)
	rootCmd.AddCommand(cmd)
}

func runDryActivate(cmd *cobra.Command, args []string) error {
	sys, err := evaluate(args)
	if err != nil {
		return err
	}
	t, done, err := openTarget()
	if err != nil {
		return err
	}
	defer done()
	p, _, err := realiseConfig(t, sys)
	if err != nil {
		return err
	}
	target, err := t.LoadSystem(p)
	if err != nil {
		return err
	}
	o := switchOptions(activate.ModeTest, "")
	plan, err := t.Plan(target, o.Options)
	if err != nil {
		return err
	}
	if dryFlags.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	if prev := t.ActiveSystem(); prev != nil && prev.Logical != target.Logical {
		if d, err := t.DiffSystems(prev, target, false); err == nil {
			os.Stdout.WriteString(d.Short() + "\n")
		}
	}
	plan.Print(os.Stdout)
	return nil
}
