package tenants_test

import (
	"errors"
	"strings"
	"testing"

	"marquee/tenants"
)

func TestValidateSlug(t *testing.T) {
	cases := []struct {
		slug string
		ok   bool
	}{
		{"acme", true},
		{"ab", true},
		{"acme-x", true},
		{"a1", true},
		{"venue-chain-42", true},
		{"a" + strings.Repeat("b", 38), true}, // 39 characters: the maximum
		{"a" + strings.Repeat("b", 39), false},
		{"", false},
		{"a", false}, // too short
		{"1acme", false},
		{"-acme", false},
		{"Acme", false},
		{"ACME", false},
		{"a_b", false},
		{"a.b", false},
		{"a b", false},
		{"acme\n", false},
		{"\nacme", false},
		{"acme/x", false},
		{"acme*", false},
		{"acmé", false},
		{`acme"`, false},
		{"acme'; drop schema x;--", false},
		{"t_acme", false},
	}
	for _, c := range cases {
		err := tenants.ValidateSlug(c.slug)
		if c.ok && err != nil {
			t.Errorf("ValidateSlug(%q) = %v, want ok", c.slug, err)
		}
		if !c.ok && !errors.Is(err, tenants.ErrInvalidSlug) {
			t.Errorf("ValidateSlug(%q) = %v, want ErrInvalidSlug", c.slug, err)
		}
	}
}

func TestSchemaName(t *testing.T) {
	cases := []struct {
		slug, schema string
		ok           bool
	}{
		{"acme", "t_acme", true},
		{"acme-x", "t_acme_x", true},
		{"a-b-c", "t_a_b_c", true},
		{"ab9", "t_ab9", true},
		{"a_b", "", false}, // would collide with a-b
		{"Acme", "", false},
		{"acme; drop schema public", "", false},
		{`x"; drop`, "", false},
		{"", "", false},
	}
	for _, c := range cases {
		got, err := tenants.SchemaName(c.slug)
		switch {
		case c.ok && (err != nil || got != c.schema):
			t.Errorf("SchemaName(%q) = %q, %v; want %q", c.slug, got, err, c.schema)
		case !c.ok && (!errors.Is(err, tenants.ErrInvalidSlug) || got != ""):
			t.Errorf("SchemaName(%q) = %q, %v; want ErrInvalidSlug", c.slug, got, err)
		}
	}
	// The mapping is injective over valid slugs: "-" becomes "_", and "_" is
	// not a valid slug character, so two slugs never share a schema.
	long := "a" + strings.Repeat("-", 38)
	s, err := tenants.SchemaName(long)
	if err != nil || len(s) > 63 {
		t.Fatalf("longest slug gives schema %q (%d chars), %v: must fit PostgreSQL's 63", s, len(s), err)
	}
}

func TestSlugFromRequest(t *testing.T) {
	const base = "localhost"
	cases := []struct {
		name, host, header string
		want               string
		wantErr            bool
	}{
		{"subdomain", "acme.localhost", "", "acme", false},
		{"subdomain with port", "acme.localhost:8080", "", "acme", false},
		{"uppercase host", "ACME.LocalHost:8080", "", "acme", false},
		{"base host", "localhost", "", "", false},
		{"base host with port", "localhost:8080", "", "", false},
		{"base host uppercase", "LOCALHOST", "", "", false},
		{"header only", "localhost:8080", "acme", "acme", false},
		{"header only, spaces trimmed", "localhost", "  acme ", "acme", false},
		{"header only, foreign host", "127.0.0.1:8080", "acme-x", "acme-x", false},
		{"host and matching header", "acme.localhost:8080", "acme", "acme", false},
		{"host and mismatching header", "acme.localhost:8080", "other", "", true},
		{"host and header of a prefix tenant", "acme-x.localhost", "acme", "", true},
		{"invalid subdomain underscore", "a_b.localhost", "", "", true},
		{"invalid subdomain leading dash", "-x.localhost", "", "", true},
		{"invalid subdomain too long", "a" + strings.Repeat("b", 39) + ".localhost", "", "", true},
		{"invalid subdomain too short", "a.localhost", "", "", true},
		{"nested subdomain", "x.y.localhost", "", "", true},
		{"nested subdomain with valid header", "x.y.localhost", "x", "", true},
		{"invalid header", "localhost", "Acme", "", true},
		{"sql-looking header", "localhost", "acme'; drop schema x;--", "", true},
		{"sql-looking header on tenant host", "acme.localhost", "acme'; drop schema x;--", "", true},
		{"header with slash", "localhost", "acme/x", "", true},
		{"fully qualified tenant host", "acme.localhost.", "", "acme", false},
		{"fully qualified tenant host with port", "acme.localhost.:8080", "", "acme", false},
		{"fully qualified base host", "localhost.", "", "", false},
		{"suffix but not a subdomain", "evillocalhost", "", "", false},
		{"empty host", "", "", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := tenants.SlugFromRequest(c.host, c.header, base)
			if c.wantErr {
				if err == nil {
					t.Fatalf("SlugFromRequest(%q, %q) = %q, want an error", c.host, c.header, got)
				}
				if got != "" {
					t.Fatalf("SlugFromRequest(%q, %q) returned slug %q together with error %v", c.host, c.header, got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("SlugFromRequest(%q, %q) = %q, %v; want %q", c.host, c.header, got, err, c.want)
			}
			if got != "" {
				if err := tenants.ValidateSlug(got); err != nil {
					t.Fatalf("returned slug %q is not valid: %v", got, err)
				}
			}
		})
	}
	// A base domain with a port-less uppercase spelling resolves the same.
	if got, err := tenants.SlugFromRequest("acme.marquee.example:443", "", "Marquee.Example"); err != nil || got != "acme" {
		t.Fatalf("uppercase base domain: %q, %v", got, err)
	}
}
