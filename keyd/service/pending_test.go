package service

import (
	"fmt"
	"testing"
)

func TestPendingKeysLoadEachIDOnceWithinTheirBoundAndInBatches(t *testing.T) {
	p := newPendingKeys(3)
	for _, id := range []string{"a", "b", "a", "c"} {
		if !p.add(id) {
			t.Fatalf("add %q refused", id)
		}
	}
	if p.add("d") {
		t.Fatal("a fourth id past the bound of 3 accepted")
	}
	if !p.add("b") {
		t.Fatal("an id already waiting refused at the bound")
	}
	<-p.ready // the adds' token
	first := p.take(2)
	select {
	case <-p.ready:
	default:
		t.Fatal("ids are left but no token says so")
	}
	rest := p.take(2)
	got := map[string]int{}
	for _, id := range append(first, rest...) {
		got[id]++
	}
	if len(first) != 2 || len(rest) != 1 || fmt.Sprint(got) != "map[a:1 b:1 c:1]" {
		t.Fatalf("took %v then %v; want a, b and c once each, two then one", first, rest)
	}
	if p.ids != nil || len(p.take(10)) != 0 {
		t.Fatal("a drained set still holds its map or ids")
	}
}
