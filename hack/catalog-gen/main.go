// Command catalog-gen regenerates pkg/aws/catalog/instance-types.json from the shared data
// set. hack/update-catalog.sh runs it; see pkg/aws/catalog/README.md.
//
// Usage: go run ./hack/catalog-gen [-src ../shared/data/ec2-instance-types.json] [-out pkg/aws/catalog/instance-types.json]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/nodewright/nodewright/pkg/aws/catalog"
)

func main() {
	src := flag.String("src", "../shared/data/ec2-instance-types.json", "the shared data set to read")
	out := flag.String("out", "pkg/aws/catalog/instance-types.json", "the catalog file to write")
	flag.Parse()
	if err := run(*src, *out); err != nil {
		fmt.Fprintf(os.Stderr, "catalog-gen: %v\n", err)
		os.Exit(1)
	}
}

func run(src, out string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading the source data: %w", err)
	}
	generated, err := catalog.Generate(data)
	if err != nil {
		return fmt.Errorf("generating %s: %w", out, err)
	}
	if err := os.WriteFile(out, generated, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}
