package logstore

import (
	"fmt"
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

// A write batch is several messages' rows, each message one part, one after
// another; a message may cross a minute. Each bucket gets its own rows, in
// order, and reading the bucket back gives exactly them.
func TestBucketsOfSplitsAWriteBatchOfWholeMessages(t *testing.T) {
	m1 := time.Date(2026, 12, 6, 3, 1, 0, 0, time.UTC)
	var rows []RequestLog
	want := map[string][]string{}
	for msg, part := range []string{"P", "Q", "R"} {
		for i := range 6 {
			at := m1.Add(time.Duration(msg*20+i*5+25) * time.Second) // Q crosses into the next minute
			r := RequestLog{ID: fmt.Sprintf("%s%d", part, i), Batch: part, Time: at, Model: part}
			rows = append(rows, r)
			id := bucketID(part, MinuteBucket(at))
			want[id] = append(want[id], r.ID)
		}
	}
	buckets, groups, err := bucketsOf(rows)
	if err != nil {
		t.Fatal(err)
	}
	if len(buckets) != len(want) {
		t.Fatalf("%d buckets, want %d (%v)", len(buckets), len(want), want)
	}
	for i, b := range buckets {
		var got []string
		for _, r := range groups[i] {
			got = append(got, r.ID)
		}
		stored, err := b.rows()
		if err != nil {
			t.Fatal(err)
		}
		var back []string
		for _, r := range stored {
			back = append(back, r.ID)
			if r.Model != r.Batch {
				t.Errorf("bucket %s: row %s came back as %+v", b.ID, r.ID, r)
			}
		}
		if !slices.Equal(got, want[b.ID]) || !slices.Equal(back, want[b.ID]) {
			t.Errorf("bucket %s: grouped %v, stored %v; want %v", b.ID, got, back, want[b.ID])
		}
		// A group is the batch's own rows, so appending to one must not
		// write over the next.
		if cap(groups[i]) != len(groups[i]) {
			t.Errorf("bucket %s: group has room for %d more rows inside the batch", b.ID, cap(groups[i])-len(groups[i]))
		}
	}
}

// Encoders of bucket rows are reused with their buffers: a small bucket
// encoded after a large one holds only its own rows.
func TestEncodedRowsCarryNothingOfAnEarlierBucket(t *testing.T) {
	at := time.Date(2026, 12, 6, 3, 1, 0, 0, time.UTC)
	var big []RequestLog
	for i := range 300 {
		big = append(big, RequestLog{ID: fmt.Sprint("big", i), Time: at, Route: "gemini.generateContent", Upstream: "x"})
	}
	small := []RequestLog{{ID: "s0", Time: at}, {ID: "s1", Time: at}}
	for range 2 * cap(rowEncoders) { // through every kept encoder
		if _, err := encodeRows(big); err != nil {
			t.Fatal(err)
		}
		rb, err := encodeRows(small)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRows("s", rb)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != "s0" || got[1].ID != "s1" || got[0].Route != "" || got[1].Upstream != "" {
			t.Fatalf("small bucket decoded to %d rows: %+v", len(got), got)
		}
	}
}
