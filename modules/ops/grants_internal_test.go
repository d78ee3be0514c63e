package ops

import (
	"io/fs"
	"regexp"
	"slices"
	"testing"

	"marquee/migrations"
)

// The control migration that gives chains made before ops its default
// grants lists the same rules as grants().
func TestGrantsMigrationMatchesModule(t *testing.T) {
	raw, err := fs.ReadFile(migrations.ControlFS(), "00130_ops_grants.sql")
	if err != nil {
		t.Fatal(err)
	}
	var inSQL []string
	for _, m := range regexp.MustCompile(`\('([a-z_]+)', '(ops\.[a-z_]+)', '(read|write)'\)`).FindAllStringSubmatch(string(raw), -1) {
		inSQL = append(inSQL, m[1]+":"+m[2]+":"+m[3])
	}
	var inGo []string
	for _, g := range grants() {
		inGo = append(inGo, g.Role+":"+g.Object+":"+g.Action)
	}
	slices.Sort(inSQL)
	slices.Sort(inGo)
	if !slices.Equal(inSQL, inGo) || len(inGo) == 0 {
		t.Fatalf("migration grants %v,\nmodule grants %v", inSQL, inGo)
	}
}
