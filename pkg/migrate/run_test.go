package migrate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	seed, err := os.ReadFile(filepath.Join("testdata", "v1alpha5-provisioner.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seedOut, err := os.ReadFile(filepath.Join("testdata", "v1alpha5-provisioner.out.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seedOut = bytes.ReplaceAll(seedOut, []byte("v1alpha5-provisioner.yaml"), []byte("-"))
	unsupported := filepath.Join("testdata", "unsupported.yaml")
	tests := []struct {
		name       string
		opts       Options
		wantErr    string
		wantStdout string // "" for nothing
		wantStderr string // a substring; "" for nothing
	}{
		{
			name:       "stdin",
			opts:       Options{Files: []string{"-"}},
			wantStdout: string(seedOut),
		},
		{
			name:       "stdin, strict, no warnings",
			opts:       Options{Files: []string{"-"}, Strict: true},
			wantStdout: string(seedOut),
		},
		{
			name:       "warnings",
			opts:       Options{Files: []string{unsupported}},
			wantStdout: "# Migrated from Provisioner/batch in " + unsupported,
			wantStderr: "warning: " + unsupported + ": Provisioner/batch: spec.someFutureField: unknown field: not carried over\n",
		},
		{
			name:       "warnings, strict",
			opts:       Options{Files: []string{unsupported}, Strict: true},
			wantErr:    "cannot be carried over (--strict): nothing written",
			wantStderr: "warning: " + unsupported + ": Provisioner/batch: spec.someFutureField: unknown field: not carried over\n",
		},
		{
			name:    "no input",
			opts:    Options{},
			wantErr: "no input",
		},
		{
			name:    "stdin twice",
			opts:    Options{Files: []string{"-", "-"}},
			wantErr: "stdin (-) can be read only once",
		},
		{
			name:    "missing file",
			opts:    Options{Files: []string{filepath.Join("testdata", "missing.yaml")}},
			wantErr: "reading testdata/missing.yaml",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			tc.opts.Stdin, tc.opts.Stdout, tc.opts.Stderr = bytes.NewReader(seed), &stdout, &stderr
			err := Run(tc.opts)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Run error = %v, want %q", err, tc.wantErr)
			}
			switch {
			case tc.wantStdout == "" && stdout.Len() > 0:
				t.Errorf("stdout = %q, want nothing", stdout.String())
			case !strings.Contains(stdout.String(), tc.wantStdout):
				t.Errorf("stdout = %q, want it to contain %q", stdout.String(), tc.wantStdout)
			}
			switch {
			case tc.wantStderr == "" && stderr.Len() > 0:
				t.Errorf("stderr = %q, want nothing", stderr.String())
			case !strings.Contains(stderr.String(), tc.wantStderr):
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}
