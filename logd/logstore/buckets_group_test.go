package logstore

import (
	"slices"
	"testing"
	"time"
)

func TestBucketsOfGroupsRowsByPartAndMinuteEachRowOnce(t *testing.T) {
	m1 := time.Date(2026, 12, 6, 3, 1, 0, 0, time.UTC)
	m2 := m1.Add(time.Minute)
	row := func(id, part string, at time.Time) RequestLog { return RequestLog{ID: id, Batch: part, Time: at} }
	rows := []RequestLog{
		row("a", "A", m1), row("b", "A", m1.Add(59*time.Second)), row("a", "A", m1.Add(time.Second)), // a again: once
		row("c", "A", m2), row("d", "B", m2), row("e", "A", m1.Add(30*time.Second)), row("a", "B", m2),
	}
	buckets, groups, err := bucketsOf(rows)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(g []RequestLog) []string {
		var out []string
		for _, r := range g {
			out = append(out, r.ID)
		}
		return out
	}
	want := map[string][]string{
		bucketID("A", MinuteBucket(m1)): {"a", "b", "e"},
		bucketID("A", MinuteBucket(m2)): {"c"},
		bucketID("B", MinuteBucket(m2)): {"d", "a"},
	}
	if len(buckets) != len(want) || len(groups) != len(want) {
		t.Fatalf("%d buckets, %d groups; want %d", len(buckets), len(groups), len(want))
	}
	for i, b := range buckets {
		if w, ok := want[b.ID]; !ok || !slices.Equal(ids(groups[i]), w) || b.N != len(w) || !slices.Equal(b.IDs, w) {
			t.Errorf("bucket %s: rows %v, ids %v, n %d; want %v", b.ID, ids(groups[i]), b.IDs, b.N, w)
		}
	}

	// One part's rows in one minute, the usual batch: one bucket of them all.
	one := []RequestLog{row("x", "C", m1), row("y", "C", m1.Add(time.Second)), row("z", "C", m1.Add(2*time.Second))}
	buckets, groups, err = bucketsOf(one)
	if err != nil || len(buckets) != 1 || !slices.Equal(ids(groups[0]), []string{"x", "y", "z"}) {
		t.Fatalf("one bucket of x, y, z: %d buckets, %v", len(buckets), err)
	}
	got, err := buckets[0].rows()
	if err != nil || !slices.Equal(ids(got), []string{"x", "y", "z"}) {
		t.Fatalf("stored rows %v, %v", ids(got), err)
	}
}
