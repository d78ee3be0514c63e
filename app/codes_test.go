package app

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// constructors maps each Error constructor to the argument that holds its
// code (-1: the code is fixed) and the kind it builds ("": the kind is its
// first argument).
var constructors = map[string]struct {
	codeArg   int
	kind      Kind
	fixedCode string
}{
	"Errorf":          {1, "", ""},
	"Invalid":         {0, KindInvalid, ""},
	"InvalidField":    {0, KindInvalid, ""},
	"NotFound":        {-1, KindNotFound, "not_found"},
	"NotFoundCode":    {0, KindNotFound, ""},
	"Conflict":        {0, KindConflict, ""},
	"Forbidden":       {0, KindForbidden, ""},
	"Unauthenticated": {-1, KindUnauthenticated, "unauthenticated"},
	"RateLimited":     {0, KindRateLimited, ""},
	"TooMany":         {-1, KindRateLimited, "rate_limited"},
	"Unavailable":     {0, KindUnavailable, ""},
	"Gone":            {0, KindGone, ""},
	"PayloadTooLarge": {-1, KindPayloadTooLarge, "payload_too_large"},
	"Upstream":        {0, KindUpstream, ""},
}

// wrappers are modules' own one-field validation helpers, whose code the
// test derives from their first argument: func(dir, arg) code.
var wrappers = map[string]func(arg string) string{
	"modules/inventory.invalid":                func(field string) string { return "invalid_" + field },
	"modules/inventory/internal/model.Invalid": func(field string) string { return "invalid_" + field },
	"modules/calendar.invalid":                 func(string) string { return "invalid_request" },
}

type codeUse struct {
	code string
	kind Kind
	pos  string
}

// sourceCodes reads every non-test Go file of the repository for the codes
// passed to Error's constructors (and to Error literals), and reports what
// it cannot check: a code that is not a constant, an Error literal outside
// this package.
func sourceCodes(t *testing.T, root string) (uses []codeUse, problems []string) {
	t.Helper()
	fset := token.NewFileSet()
	kindNames := map[string]Kind{}
	for _, k := range allKinds {
		name := "Kind"
		for _, w := range strings.Split(string(k), "_") {
			name += strings.ToUpper(w[:1]) + w[1:]
		}
		kindNames[name] = k
	}
	kindOf := func(e ast.Expr) Kind {
		switch x := e.(type) {
		case *ast.Ident:
			return kindNames[x.Name]
		case *ast.SelectorExpr:
			return kindNames[x.Sel.Name]
		}
		return ""
	}
	str := func(e ast.Expr) (string, bool) {
		if bl, ok := e.(*ast.BasicLit); ok && bl.Kind == token.STRING {
			s, err := strconv.Unquote(bl.Value)
			return s, err == nil
		}
		return "", false
	}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "node_modules" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		dir := filepath.ToSlash(filepath.Dir(rel))
		inApp := dir == "app"
		// appName is what the file calls package app ("" for none).
		appName := ""
		// imported maps what the file calls a package of the repository
		// to its directory (a wrapper may be called qualified).
		imported := map[string]string{}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if p == "marquee/app" {
				appName = "app"
				if im.Name != nil {
					appName = im.Name.Name
				}
			}
			if rest, ok := strings.CutPrefix(p, "marquee/"); ok {
				name := rest[strings.LastIndex(rest, "/")+1:]
				if im.Name != nil {
					name = im.Name.Name
				}
				imported[name] = rest
			}
		}
		for _, decl := range f.Decls {
			fn, _ := decl.(*ast.FuncDecl)
			ast.Inspect(decl, func(n ast.Node) bool {
				pos := func() string {
					p := fset.Position(n.Pos())
					r, _ := filepath.Rel(root, p.Filename)
					return fmt.Sprintf("%s:%d", r, p.Line)
				}
				switch x := n.(type) {
				case *ast.CompositeLit:
					name := ""
					switch tt := x.Type.(type) {
					case *ast.Ident:
						if inApp {
							name = tt.Name
						}
					case *ast.SelectorExpr:
						if id, ok := tt.X.(*ast.Ident); ok && id.Name == appName {
							name = tt.Sel.Name
						}
					}
					if name != "Error" {
						return true
					}
					if !inApp {
						problems = append(problems, pos()+": module code builds an app.Error by hand; use a constructor (app.Invalid, app.Conflict, …)")
					}
					var code string
					var kind Kind
					for _, el := range x.Elts {
						kv, ok := el.(*ast.KeyValueExpr)
						if !ok {
							continue
						}
						switch kv.Key.(*ast.Ident).Name {
						case "Code":
							code, _ = str(kv.Value)
						case "Kind":
							kind = kindOf(kv.Value)
						}
					}
					if _, isCons := constructors[funcName(fn)]; code == "" && inApp && isCons {
						return true // a constructor passes its code on
					}
					if code == "" {
						problems = append(problems, pos()+": an Error literal needs a constant Code")
					} else {
						uses = append(uses, codeUse{code, kind, pos()})
					}
				case *ast.CallExpr:
					name := ""
					switch ff := x.Fun.(type) {
					case *ast.Ident:
						if inApp {
							name = ff.Name
						} else if w, ok := wrappers[dir+"."+ff.Name]; ok && len(x.Args) > 0 {
							if s, ok := str(x.Args[0]); ok {
								uses = append(uses, codeUse{w(s), KindInvalid, pos()})
							}
							return true
						}
					case *ast.SelectorExpr:
						if id, ok := ff.X.(*ast.Ident); ok && id.Name == appName && appName != "" {
							name = ff.Sel.Name
						} else if ok {
							if w, ok := wrappers[imported[id.Name]+"."+ff.Sel.Name]; ok && len(x.Args) > 0 {
								if s, ok := str(x.Args[0]); ok {
									uses = append(uses, codeUse{w(s), KindInvalid, pos()})
								}
								return true
							}
						}
					}
					c, ok := constructors[name]
					if !ok {
						return true
					}
					kind := c.kind
					if kind == "" {
						kind = kindOf(x.Args[0])
					}
					if c.codeArg < 0 {
						uses = append(uses, codeUse{c.fixedCode, kind, pos()})
						return true
					}
					if s, ok := str(x.Args[c.codeArg]); ok {
						uses = append(uses, codeUse{s, kind, pos()})
						return true
					}
					// A code that is not a constant is allowed only inside
					// a constructor or a wrapper, which pass theirs on.
					if fn != nil && fn.Recv == nil {
						if _, isCons := constructors[fn.Name.Name]; (isCons && inApp) || wrappers[dir+"."+fn.Name.Name] != nil {
							return true
						}
					}
					problems = append(problems, pos()+": the error code is not a string constant, so no test can check it is listed")
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return uses, problems
}

// TestEveryCodeIsListed: every code the source can return is in Codes, under
// the kind it is built with.
func TestEveryCodeIsListed(t *testing.T) {
	uses, problems := sourceCodes(t, "..")
	if len(uses) < 50 {
		t.Fatalf("found only %d error codes in the source: the walk is broken", len(uses))
	}
	for _, p := range problems {
		t.Error(p)
	}
	var missing []string
	for _, u := range uses {
		k, ok := Listed(u.code)
		switch {
		case !ok:
			t.Errorf("%s: error code %q (%s) is not listed in app/codes.go: add it with its kind and meaning", u.pos, u.code, u.kind)
			missing = append(missing, fmt.Sprintf("\t{%q, %q, \"\"},", u.code, u.kind))
		case k != u.kind:
			t.Errorf("%s: error code %q is built as %s but app/codes.go lists it as %s", u.pos, u.code, u.kind, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Logf("missing:\n%s", strings.Join(missing, "\n"))
	}
}

// TestCodesTable: every listed code has a kind with a status, and a meaning.
func TestCodesTable(t *testing.T) {
	known := map[Kind]bool{}
	for _, k := range allKinds {
		known[k] = true
	}
	for _, ci := range Codes {
		if !known[ci.Kind] || ci.Meaning == "" {
			t.Errorf("%s: kind %q, meaning %q", ci.Code, ci.Kind, ci.Meaning)
		}
	}
}

func funcName(fn *ast.FuncDecl) string {
	if fn == nil || fn.Recv != nil {
		return ""
	}
	return fn.Name.Name
}

// TestFailRefusesUnlistedCode: the run-time check catches a code the static
// walk cannot see (built at run time), and Fail derives status and
// Retry-After from the kind and RetryAfter.
func TestFailRefusesUnlistedCode(t *testing.T) {
	fail := func(e *Error) (rec *httptest.ResponseRecorder, panicked any) {
		rec = httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		c.Request = httptest.NewRequest("GET", "/", nil)
		defer func() { panicked = recover() }()
		Fail(c, e)
		return rec, nil
	}
	if _, p := fail(Conflict("no_such_code", "x")); p == nil || !strings.Contains(fmt.Sprint(p), `"no_such_code" (kind "conflict") is not listed`) {
		t.Errorf("unlisted code: panic %v", p)
	}
	if _, p := fail(Invalid("sold_out", "x")); p == nil || !strings.Contains(fmt.Sprint(p), "lists it as") {
		t.Errorf("code under the wrong kind: panic %v", p)
	}
	rec, p := fail(RateLimited("hold_limit", 1500*time.Millisecond, "x"))
	if p != nil || rec.Code != 429 || rec.Header().Get("Retry-After") != "2" {
		t.Errorf("got %d, Retry-After %q, panic %v", rec.Code, rec.Header().Get("Retry-After"), p)
	}
}
