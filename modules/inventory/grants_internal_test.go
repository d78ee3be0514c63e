package inventory

import (
	"io/fs"
	"regexp"
	"slices"
	"testing"

	"marquee/migrations"
)

// The control migration that gives chains made before the door its default
// grants lists exactly the module's door grants.
func TestDoorGrantsMigrationMatchesModule(t *testing.T) {
	raw, err := fs.ReadFile(migrations.ControlFS(), "00100_inventory_door_grants.sql")
	if err != nil {
		t.Fatal(err)
	}
	var inSQL []string
	for _, m := range regexp.MustCompile(`\('([a-z_]+)', '(read|write)'\)`).FindAllStringSubmatch(string(raw), -1) {
		inSQL = append(inSQL, m[1]+":"+m[2])
	}
	var inGo []string
	for _, g := range grants() {
		if g.Object == ObjDoor {
			inGo = append(inGo, g.Role+":"+g.Action)
		}
	}
	slices.Sort(inSQL)
	slices.Sort(inGo)
	if !slices.Equal(inSQL, inGo) || len(inGo) == 0 {
		t.Fatalf("migration grants %v, module grants %v", inSQL, inGo)
	}
}
