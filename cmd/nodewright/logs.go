package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// followPollInterval is how often `sandbox logs -f` looks for new lines.
const followPollInterval = 200 * time.Millisecond

func newSandboxLogsCommand() *cobra.Command {
	var dir string
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [-f] [--dir DIR]",
		Short: "Print the log of the sandbox's nodewright-scheduler: the Provision plugin's and the lifecycle's lines",
		Long: `logs prints the controller log of the sandbox in --dir: what the in-process
nodewright-scheduler logged, the Provision plugin ("Computed packing of ...") and the lifecycle
("Launched instance: ...", "Added TTL to empty node", "Cordoned node", "Deleted node") among
it. With -f it keeps printing new lines until Ctrl-C or until the sandbox stops. The control
plane's own logs are in the logs/ directory beside it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return printLog(ctx, dir, follow, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&dir, "dir", ".sandbox", "the sandbox's directory, as given to `sandbox up --dir`")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines until Ctrl-C or until the sandbox stops")
	return cmd
}

// printLog copies the controller log of the sandbox in dir to out and, if follow, keeps
// copying what is appended until ctx ends or the sandbox has stopped (its pid file is gone).
func printLog(ctx context.Context, dir string, follow bool, out io.Writer) error {
	path := controllerLogPath(dir)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no controller log at %s: start a sandbox with `nodewright sandbox up --dir %s` (without --no-scheduler)", path, dir)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		if _, err := io.Copy(out, f); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if !follow {
			return nil
		}
		if _, err := os.Stat(filepath.Join(dir, pidFile)); errors.Is(err, fs.ErrNotExist) {
			// Stopped: it wrote its last lines before removing the pid file.
			_, err := io.Copy(out, f)
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followPollInterval):
		}
	}
}
