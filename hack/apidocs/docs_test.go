package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the repository's top directory, seen from this package's.
const repoRoot = "../.."

// TestAPIDocsCurrent fails when docs/api.md is not what the generator writes from
// pkg/apis/v1alpha1 today: run `make generate`.
func TestAPIDocsCurrent(t *testing.T) {
	want, err := generate(filepath.Join(repoRoot, "pkg", "apis", "v1alpha1"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(repoRoot, "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Error("docs/api.md is stale: run make generate")
	}
}

// TestMetricsDocumented fails when a metric registered in pkg/ (a k8s.io/component-base
// metrics.*Opts literal with a Name) is not in docs/metrics.md.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := registeredMetrics(t, filepath.Join(repoRoot, "pkg"))
	if len(names) == 0 {
		t.Fatal("found no metrics in pkg/: the search is broken")
	}
	for _, name := range names {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("metric %s is not documented in docs/metrics.md", name)
		}
	}
}

// registeredMetrics returns the full names (nodewright_<name>) of the metrics defined under dir.
func registeredMetrics(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok || identName(sel.X) != "metrics" || !strings.HasSuffix(sel.Sel.Name, "Opts") {
				return true
			}
			for _, elt := range lit.Elts {
				kv, ok := elt.(*ast.KeyValueExpr)
				if !ok || identName(kv.Key) != "Name" {
					continue
				}
				if bl, ok := kv.Value.(*ast.BasicLit); ok {
					if name, err := strconv.Unquote(bl.Value); err == nil {
						names = append(names, "nodewright_"+name)
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// identName is the name of an identifier expression, or "".
func identName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
