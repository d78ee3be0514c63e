package app

import (
	"strings"
	"testing"
)

// TestSeedOrder checks that seeds run after the modules they name and keep
// registration order otherwise.
func TestSeedOrder(t *testing.T) {
	cases := []struct {
		modules []string
		after   map[string][]string // module → the modules it seeds after; only these seed
		want    string
	}{
		{[]string{"a", "b", "c"}, map[string][]string{"a": nil, "b": nil, "c": nil}, "a,b,c"},
		{[]string{"inventory", "calendar"}, map[string][]string{"inventory": {"calendar"}, "calendar": nil}, "calendar,inventory"},
		{[]string{"ops", "inventory", "staffing", "calendar"}, map[string][]string{
			"ops": {"inventory", "staffing"}, "inventory": {"calendar"}, "staffing": {"calendar"}, "calendar": nil,
		}, "calendar,inventory,staffing,ops"},
		{[]string{"a", "quiet", "b"}, map[string][]string{"b": nil, "a": {"b", "b"}}, "b,a"},
	}
	for _, c := range cases {
		var seeds []moduleSeed
		for _, m := range c.modules {
			if after, ok := c.after[m]; ok {
				seeds = append(seeds, moduleSeed{module: m, after: after})
			}
		}
		got, err := orderSeeds(c.modules, seeds)
		if err != nil {
			t.Fatalf("%v: %v", c.after, err)
		}
		var names []string
		for _, s := range got {
			names = append(names, s.module)
		}
		if strings.Join(names, ",") != c.want {
			t.Errorf("%v: order %v, want %s", c.after, names, c.want)
		}
	}
}
