package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/host"
	"github.com/nexisos/nexis/store/cache"
)

var copyFlags struct{ to, signKey, remoteProgram string }

// copyOpts is the copy copy's flags ask for.
var copyOpts cache.ExportOptions

func init() {
	cmd := command("copy --to URL PATH...", cobra.MinimumNArgs(1), runCopy)
	f := cmd.Flags()
	f.StringVar(&copyFlags.to, "to", "", "copy to `URL` (file://, http(s)://, s3://, ssh://)")
	signKeyFlag(cmd, &copyFlags.signKey)
	// -j/--jobs means builds at once on every verb that builds; copy's
	// concurrency is its own flag.
	f.IntVar(&copyOpts.Jobs, "parallel", 4, "archive and upload `N` paths at once")
	f.IntVar(&copyOpts.Jobs, "jobs", 4, "")
	f.MarkDeprecated("jobs", "use --parallel (-j/--jobs is the number of builds at once on the verbs that build)")
	f.StringVar(&copyOpts.Compression, "compression", "zstd", "compress archives with `METHOD`: zstd or none")
	f.StringVar(&copyFlags.remoteProgram, "remote-program", host.RemoteProgram(), "the shell `COMMAND` that runs nexis on an ssh:// destination")
	jsonFlag(cmd, "print what was copied as JSON")
	cmd.MarkFlagRequired("to")
	register(rootCmd, cmd)
}

func runCopy(cmd *cobra.Command, args []string) error {
	var err error
	if copyOpts.Key, err = loadSignKey(copyFlags.signKey); err != nil {
		return err
	}
	copyOpts.Progress = newProgress("copying").Transfer()
	ctx, stop := interruptible()
	defer stop()
	stats, err := here.Copy(ctx, copyFlags.to, host.SSH(copyFlags.remoteProgram), args, copyOpts)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stats)
	}
	stats.Print(os.Stderr, copyFlags.to)
	return nil
}
