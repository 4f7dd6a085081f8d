package bus_test

import (
	"testing"

	"github.com/gemini-balance-go/shared/bus"
)

func TestAcquireReplyFailsOnlyWithNeitherKeyNorReason(t *testing.T) {
	for _, c := range []struct {
		rep  bus.AcquireReply
		want bool
	}{
		{bus.AcquireReply{Error: "bad acquire request"}, true},
		{bus.AcquireReply{Error: "cooling", NoKey: bus.NoKeyAllCooling}, false},
		{bus.AcquireReply{ID: "k1", Error: "note"}, false},
		{bus.AcquireReply{ID: "k1"}, false},
		{bus.AcquireReply{NoKey: bus.NoKeyNone}, false},
	} {
		if got := c.rep.Failed(); got != c.want {
			t.Errorf("%+v.Failed() = %v, want %v", c.rep, got, c.want)
		}
	}
}
