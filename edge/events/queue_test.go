package events

import "testing"

func TestQueueIsFIFOBoundedAndLetsALargeArrayGoOnceDrained(t *testing.T) {
	q := newQueue("s", 10_000)
	for i := range 10_000 {
		if !q.push(i) {
			t.Fatalf("push %d refused below the bound", i)
		}
	}
	if q.push(-1) {
		t.Fatal("push past the bound accepted")
	}
	for i := range 10_000 {
		ev, ok := q.pop()
		if !ok || ev.(int) != i {
			t.Fatalf("pop %d = %v, %v", i, ev, ok)
		}
		if i == 4_999 && !q.push(10_000) { // the space taken is usable again
			t.Fatal("push after pops refused")
		}
	}
	if ev, ok := q.pop(); !ok || ev.(int) != 10_000 {
		t.Fatalf("last pop = %v, %v", ev, ok)
	}
	if _, ok := q.pop(); ok || q.len() != 0 {
		t.Fatalf("a drained queue still pops (len %d)", q.len())
	}
	if cap(q.items) > keepCap {
		t.Fatalf("a drained queue keeps %d slots; want at most %d", cap(q.items), keepCap)
	}
}

// A queue whose consumer keeps up stays small: it slides its backlog down
// the same backing array instead of growing it.
func TestQueueReusesItsArrayWhileTheConsumerKeepsUp(t *testing.T) {
	q := newQueue("s", 1<<16)
	for i := range 100 {
		q.push(i)
	}
	for i := 100; i < 100_000; i++ {
		q.push(i)
		if ev, ok := q.pop(); !ok || ev.(int) != i-100 {
			t.Fatalf("pop = %v, %v; want %d", ev, ok, i-100)
		}
	}
	if c := cap(q.items); c > 256 {
		t.Fatalf("backing array grew to %d slots for a backlog of %d", c, q.len())
	}
}
