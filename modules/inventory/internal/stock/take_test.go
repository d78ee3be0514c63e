package stock

import (
	"testing"

	"github.com/google/uuid"
)

func TestPlan(t *testing.T) {
	c := uuid.MustParse("01900000-0000-7000-8000-000000000001")
	tests := []struct {
		name  string
		free  []int // locked shards in lock order
		n     int
		want  []Take
		left  int
		after []int
	}{
		{"one shard with room takes it all", []int{1, 4, 9}, 3, []Take{{ShardKey{c, 1}, 3}}, 0, []int{1, 1, 9}},
		{"the first shard with room, not the largest", []int{5, 9}, 5, []Take{{ShardKey{c, 0}, 5}}, 0, []int{0, 9}},
		{"spread shard by shard when none has room", []int{2, 0, 3}, 4, []Take{{ShardKey{c, 0}, 2}, {ShardKey{c, 2}, 2}}, 0, []int{0, 0, 1}},
		{"not enough: nothing, and what is left", []int{1, 2}, 4, nil, 3, []int{1, 2}},
		{"no shard locked", nil, 1, nil, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLocked()
			for i, f := range tc.free {
				l.Add(c, i, f)
			}
			got, left := l.Plan(c, tc.n)
			if len(got) != len(tc.want) || left != tc.left {
				t.Fatalf("plan %v left %d, want %v left %d", got, left, tc.want, tc.left)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("plan %v, want %v", got, tc.want)
				}
			}
			l.Apply(got)
			for i, f := range tc.after {
				if l.Free(ShardKey{c, i}) != f {
					t.Errorf("shard %d has %d after the take, want %d", i, l.Free(ShardKey{c, i}), f)
				}
			}
		})
	}
}

// Takes in a row go round the locked shards: a hold batch's holds land on
// different rows, so their payments do not queue on one.
func TestPlanGoesRoundTheShards(t *testing.T) {
	c := uuid.MustParse("01900000-0000-7000-8000-000000000001")
	l := NewLocked()
	for i, f := range []int{10, 10, 1, 10} {
		l.Add(c, i, f)
	}
	var shards []int
	for range 6 {
		got, _ := l.Plan(c, 2)
		if len(got) != 1 {
			t.Fatalf("plan %v, want one shard", got)
		}
		l.Apply(got)
		shards = append(shards, got[0].Shard)
	}
	// Shard 2 has room for one unit only: skipped.
	want := []int{0, 1, 3, 0, 1, 3}
	for i := range want {
		if shards[i] != want[i] {
			t.Fatalf("takes went to shards %v, want %v", shards, want)
		}
	}
	// Too big for any one shard: split, shard by shard, from the first.
	got, _ := l.Plan(c, 14)
	wantSplit := []Take{{ShardKey{c, 0}, 6}, {ShardKey{c, 1}, 6}, {ShardKey{c, 2}, 1}, {ShardKey{c, 3}, 1}}
	if len(got) != len(wantSplit) {
		t.Fatalf("split plan %v, want %v", got, wantSplit)
	}
	for i := range got {
		if got[i] != wantSplit[i] {
			t.Fatalf("split plan %v, want %v", got, wantSplit)
		}
	}
}
