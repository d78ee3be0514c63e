// Package archtest checks the platform's shape (ARCHITECTURE.md, "The module
// contract") on the source tree, so CI refuses a change that breaks it.
//
// It reads the tree with go/parser and go/ast alone: every rule is about
// names — import paths, string literals, selected field names — which syntax
// shows exactly, so type information (golang.org/x/tools/go/packages, a new
// dependency and seconds of type checking) would buy nothing. The one rule
// that could want types, selecting .DB or .SQL, is checked on the name: it
// is stricter than a typed check (it also catches the App reached under any
// alias), and module code has no other value with such a field.
package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// rawPoolImports open a module's own database pools.
var rawPoolImports = []string{"database/sql", "gorm.io/driver/postgres", "github.com/jackc/pgx/v5/pgxpool", "github.com/jackc/pgx/v5/stdlib"}

// scopeWords name the tenant scope; only the door and the migration runner
// may build one.
var scopeWords = regexp.MustCompile(`(?i)search_path|set_config`)

// check returns every breach of the rules in the Go files of fsys, a tree
// whose Go module is named module, and how many files it read.
func check(fsys fs.FS, module string) (breaches []string, files int, err error) {
	fset := token.NewFileSet()
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(fset, p, src, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		breaches = append(breaches, checkFile(fset, p, f, module)...)
		return nil
	})
	return breaches, files, err
}

func checkFile(fset *token.FileSet, p string, f *ast.File, module string) []string {
	var out []string
	at := func(pos token.Pos, format string, args ...any) {
		out = append(out, fmt.Sprintf("%s:%d: ", p, fset.Position(pos).Line)+fmt.Sprintf(format, args...))
	}
	parts := strings.Split(p, "/")
	isTest := strings.HasSuffix(p, "_test.go")
	inModules := parts[0] == "modules"
	// Module tests may assemble the real app with other modules and inspect
	// the database from outside (schema-qualified reads, statistics): they
	// check the module rather than do tenant work, so rules 1 and 3 bind
	// module code only. Rule 2 binds tests too.
	moduleCode := inModules && !isTest

	// The load harnesses (modules/inventory/bench, modules/ops/opsbench,
	// modules/staffing/stormbench) are
	// started from main with the whole App to drive a run; they are not
	// modules and register nothing.
	harness := strings.HasPrefix(p, "modules/inventory/bench/") || strings.HasPrefix(p, "modules/ops/opsbench/") ||
		strings.HasPrefix(p, "modules/staffing/stormbench/")

	pkgNames := map[string]bool{}
	appName := "" // the name this file gives the core package, if it imports it
	for _, imp := range f.Imports {
		ip, _ := strconv.Unquote(imp.Path.Value)
		pkgNames[importName(imp, ip)] = true
		if ip == module+"/app" {
			appName = importName(imp, ip)
		}
		// Rule 1: a module reaches another only through its contract package.
		if moduleCode && len(parts) >= 3 && strings.HasPrefix(ip, module+"/modules/") {
			rest := strings.Split(strings.TrimPrefix(ip, module+"/modules/"), "/")
			if rest[0] != parts[1] && (len(rest) < 2 || rest[1] != "contract") {
				at(imp.Pos(), "module %s imports %s: a module may import another module only through its contract package (%s/modules/%s/contract)",
					parts[1], ip, module, rest[0])
			}
		}
		// Rule 3: no module opens its own pools.
		if moduleCode && slices.Contains(rawPoolImports, ip) {
			at(imp.Pos(), "module code imports %s: modules reach tenant data through the core's door (Core.Tx, Core.TxWith, Core.PgxTx), never through pools of their own", ip)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			// Rule 2: only tenants and migrations scope a connection
			// (and this checker names the words it looks for).
			if n.Kind == token.STRING && parts[0] != "tenants" && parts[0] != "migrations" && !strings.HasPrefix(p, "internal/archtest/") {
				if w := scopeWords.FindString(n.Value); w != "" {
					at(n.Pos(), "%s outside tenants and migrations: tenant scope is set only by the door (tenants.Tx, tenants.PgxTx)", w)
				}
			}
		case *ast.SelectorExpr:
			// Rule 4: a module holds the capabilities it was given
			// (app.Core), never the App.
			if moduleCode && !harness && appName != "" && n.Sel.Name == "App" {
				if id, ok := n.X.(*ast.Ident); ok && id.Name == appName {
					at(n.Pos(), "module code names app.App: a module uses the capabilities Registrar.Core gives it, never the App")
				}
			}
			// Rule 3: no module selects the App's raw pools.
			if moduleCode && (n.Sel.Name == "DB" || n.Sel.Name == "SQL") {
				if id, ok := n.X.(*ast.Ident); ok && pkgNames[id.Name] {
					return true // a package's type, such as gorm.DB
				}
				at(n.Pos(), "module code selects .%s: modules reach tenant data through Core.Tx, Core.TxWith or Core.PgxTx, never the raw pools", n.Sel.Name)
			}
		}
		return true
	})
	return out
}

// importName is the name a file uses for an import: its explicit name, else
// the path's last element (skipping a major version suffix such as /v5).
func importName(imp *ast.ImportSpec, ip string) string {
	if imp.Name != nil {
		return imp.Name.Name
	}
	base := path.Base(ip)
	if regexp.MustCompile(`^v[0-9]+$`).MatchString(base) {
		base = path.Base(path.Dir(ip))
	}
	return base
}

// TestArchitecture checks the repository's tree.
func TestArchitecture(t *testing.T) {
	root := "../.."
	mod, err := os.ReadFile(root + "/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	module := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(string(mod), "\n", 2)[0], "module"))
	breaches, files, err := check(os.DirFS(root), module)
	if err != nil {
		t.Fatal(err)
	}
	// The walk must have seen the tree, or the rules checked nothing.
	if files < 100 {
		t.Fatalf("read only %d Go files under %s", files, root)
	}
	for _, b := range breaches {
		t.Error(b)
	}
}

// TestRulesCatchBreaches runs the checker on a small tree that breaks each
// rule once (and keeps what is allowed), so a checker that stopped seeing a
// breach fails here rather than passing silently.
func TestRulesCatchBreaches(t *testing.T) {
	file := func(src string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(src)} }
	tree := fstest.MapFS{
		"modules/modules.go":               file(`package modules; import _ "m/modules/a"; import _ "m/modules/b"`),
		"modules/a/a.go":                   file(`package a; import _ "m/modules/b/internal/x"; import _ "m/modules/b/contract"; import _ "m/modules/a/sub"`),
		"modules/a/a_test.go":              file(`package a; import _ "m/modules/b"; func f(env any) { _ = env.App.DB }`),
		"modules/a/pool.go":                file(`package a; import "database/sql"; var _ *sql.DB`),
		"modules/a/raw.go":                 file(`package a; import "gorm.io/gorm"; var _ *gorm.DB; func f(s any) { _ = s.app.SQL }`),
		"modules/b/scope_test.go":          file("package b; const q = `SELECT set_config('search_path', $1, true)`"),
		"app/app.go":                       file(`package app; const q = "SET LOCAL search_path TO x"`),
		"tenants/door.go":                  file(`package tenants; const q = "SELECT set_config('search_path', ?, true)"`),
		"tenants/door_test.go":             file(`package tenants; const q = "search_path"`),
		"migrations/migrations.go":         file(`package migrations; const q = "search_path"`),
		"modules/b/contract/contract.go":   file(`package contract`),
		"modules/a/sub/sub.go":             file(`package sub`),
		"modules/b/internal/x/x.go":        file(`package x`),
		"modules/b/b.go":                   file(`package b`),
		"modules/b/contract/contract_t.go": file(`package contract; import "gorm.io/gorm"; var _ = gorm.DB{}`),
		"modules/a/whole.go":               file(`package a; import "m/app"; type M struct{ a *app.App; c *app.Core }`),
		"modules/b/alias.go":               file(`package b; import core "m/app"; func f(a *core.App) {}`),
		"modules/b/b_test.go":              file(`package b; import "m/app"; var _ *app.App`),
		"modules/inventory/bench/run.go":   file(`package bench; import "m/app"; func Run(a *app.App) {}`),
		"main.go":                          file(`package main; import "m/app"; var _ *app.App`),
		"modules/b/other.go":               file(`package b; import "m/other/app"; var _ app.App`),
	}
	got, _, err := check(tree, "m")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"modules/a/a.go:1: module a imports m/modules/b/internal/x",
		"modules/a/pool.go:1: module code imports database/sql",
		"modules/a/raw.go:1: module code selects .SQL",
		"modules/b/scope_test.go:1: set_config outside tenants and migrations",
		"app/app.go:1: search_path outside tenants and migrations",
		"modules/a/whole.go:1: module code names app.App",
		"modules/b/alias.go:1: module code names app.App",
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("breach not reported: %s…", w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("reported %d breaches, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
}
