// Package docs checks that the documentation in this folder says what the
// code does.
package docs

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite metrics.md from the code")

// metric is one series family a role exports.
type metric struct {
	name, role, kind, help string
	labels                 []string
}

// TestMetricsReference: metrics.md lists every metric of every role, with
// its type, labels and help text as the code defines them (read from the
// prometheus constructors' literals). `go test ./docs -update` rewrites it.
func TestMetricsReference(t *testing.T) {
	var ms []metric
	for _, role := range []string{"router", "speaker", "controller"} {
		ms = append(ms, roleMetrics(t, role)...)
	}
	if len(ms) < 25 {
		t.Fatalf("found only %d metrics: the reader lost track of the code", len(ms))
	}
	slices.SortFunc(ms, func(a, b metric) int { return strings.Compare(a.name, b.name) })
	want := render(ms)
	if *update {
		if err := os.WriteFile("metrics.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("metrics.md differs from the code; run go test ./docs -update and review the diff")
	}
}

func render(ms []metric) string {
	var b strings.Builder
	b.WriteString("# Metrics reference\n\n")
	b.WriteString("Every metric bgplb exports, by role (generated from the code by `go test ./docs -update`;\n")
	b.WriteString("the test fails when this file and the code disagree). Each role serves them on its\n")
	b.WriteString("`--metrics-addr` (the router: `metrics.address` in its config) at `/metrics`, beside `/healthz`\n")
	b.WriteString("and `/readyz`. Go runtime and process metrics (`go_*`, `process_*`) come with them; the\n")
	b.WriteString("controller and the speaker also export controller-runtime's (`controller_runtime_*`, `workqueue_*`, client-go's `rest_client_*`).\n\n")
	b.WriteString("| metric | role | type | labels | meaning |\n| --- | --- | --- | --- | --- |\n")
	for _, m := range ms {
		labels := "–"
		if len(m.labels) > 0 {
			labels = "`" + strings.Join(m.labels, "`, `") + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", m.name, m.role, m.kind, labels, strings.ReplaceAll(m.help, "|", "\\|"))
	}
	return b.String()
}

// roleMetrics reads the metrics a role's package defines.
func roleMetrics(t *testing.T, role string) []metric {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join("..", role, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var ms []metric
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if m, ok := fromCall(call); ok {
				m.role = role
				ms = append(ms, m)
			}
			return true
		})
	}
	return ms
}

// fromCall reads prometheus.NewDesc(name, help, labels, nil) and
// prometheus.NewX(XOpts{Name, Help}[, labels]).
func fromCall(call *ast.CallExpr) (metric, bool) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || !isIdent(sel.X, "prometheus") {
		return metric{}, false
	}
	fn := sel.Sel.Name
	if fn == "NewDesc" && len(call.Args) >= 3 {
		m := metric{name: str(call.Args[0]), help: str(call.Args[1]), labels: strs(call.Args[2])}
		m.kind = "gauge"
		if strings.HasSuffix(m.name, "_total") {
			m.kind = "counter"
		}
		return m, strings.HasPrefix(m.name, "bgplb_")
	}
	kinds := map[string]string{"NewCounter": "counter", "NewCounterVec": "counter", "NewGauge": "gauge",
		"NewGaugeVec": "gauge", "NewHistogram": "histogram", "NewHistogramVec": "histogram"}
	kind, ok := kinds[fn]
	if !ok || len(call.Args) == 0 {
		return metric{}, false
	}
	lit, ok := call.Args[0].(*ast.CompositeLit)
	if !ok {
		return metric{}, false
	}
	m := metric{kind: kind}
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		switch {
		case isIdent(kv.Key, "Name"):
			m.name = str(kv.Value)
		case isIdent(kv.Key, "Help"):
			m.help = str(kv.Value)
		}
	}
	if len(call.Args) > 1 {
		m.labels = strs(call.Args[1])
	}
	return m, strings.HasPrefix(m.name, "bgplb_")
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// str is the value of a string literal, or of a + of them.
func str(e ast.Expr) string {
	switch v := e.(type) {
	case *ast.BasicLit:
		s, err := strconv.Unquote(v.Value)
		if err == nil {
			return s
		}
	case *ast.BinaryExpr:
		return str(v.X) + str(v.Y)
	}
	return ""
}

func strs(e ast.Expr) []string {
	lit, ok := e.(*ast.CompositeLit)
	if !ok {
		return nil
	}
	var out []string
	for _, el := range lit.Elts {
		out = append(out, str(el))
	}
	return out
}
