package terms

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// Change is one field that differs between two versions of the terms,
// named by its path (e.g. "tiers[1].price_minor"); From or To is null where
// the field exists on one side only (a tier added or removed).
type Change struct {
	Field string `json:"field"`
	From  any    `json:"from"`
	To    any    `json:"to"`
}

// Diff compares two versions field by field, in field order.
func Diff(from, to Terms) ([]Change, error) {
	a, err := flatten(from)
	if err != nil {
		return nil, err
	}
	b, err := flatten(to)
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	order := make([]string, 0, len(keys))
	for k := range keys {
		order = append(order, k)
	}
	sort.Strings(order)
	out := []Change{}
	for _, k := range order {
		x, inA := a[k]
		y, inB := b[k]
		if inA && inB && fmt.Sprint(x) == fmt.Sprint(y) {
			continue
		}
		out = append(out, Change{Field: k, From: x, To: y})
	}
	return out, nil
}

// flatten turns the terms into leaf paths and values through their JSON
// form, so a field added to Terms is diffed without touching this code.
func flatten(t Terms) (map[string]any, error) {
	t.Normalize()
	raw, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, e)
			}
		case []any:
			// An empty list has no leaves: its items appear as added.
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", prefix, i), e)
			}
		case json.Number:
			if n, err := x.Int64(); err == nil {
				out[prefix] = n
			} else {
				out[prefix] = x.String()
			}
		default:
			out[prefix] = x
		}
	}
	walk("", v)
	return out, nil
}
