package migrate

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Options are the inputs and outputs of Run, as `nodewright migrate` sets them.
type Options struct {
	// Files are the files to read Karpenter objects from; "-" is Stdin.
	Files []string
	// Strict makes any warning an error, and then nothing is written to Stdout.
	Strict bool

	// Stdin is read for the file "-".
	Stdin io.Reader
	// Stdout receives nodewright's objects as YAML.
	Stdout io.Writer
	// Stderr receives the warnings.
	Stderr io.Writer
}

// Run reads the Karpenter objects of opts.Files, writes nodewright's objects to opts.Stdout as
// YAML and every field not carried over to opts.Stderr, one "warning: " line each. With
// opts.Strict, a warning is an error and nothing is written to Stdout.
func Run(opts Options) error {
	if len(opts.Files) == 0 {
		return errors.New("no input: pass -f FILE, or -f - to read stdin")
	}
	var inputs []Input
	readStdin := false
	for _, name := range opts.Files {
		var data []byte
		var err error
		if name == "-" {
			if readStdin {
				return errors.New("stdin (-) can be read only once")
			}
			readStdin = true
			data, err = io.ReadAll(opts.Stdin)
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		inputs = append(inputs, Input{Name: name, Data: data})
	}
	result, err := Migrate(inputs...)
	if err != nil {
		return err
	}
	for _, w := range result.Warnings {
		fmt.Fprintf(opts.Stderr, "warning: %s\n", w)
	}
	if opts.Strict && len(result.Warnings) > 0 {
		return fmt.Errorf("%d field(s) cannot be carried over (--strict): nothing written", len(result.Warnings))
	}
	return result.WriteYAML(opts.Stdout)
}
