package tmpprobe

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gemini-balance-go/deployments/embedded/ferret"
	"github.com/gemini-balance-go/logd/internal/testenv"
)

func TestProbe(t *testing.T) {
	db := testenv.Mongo(t, ferret.StartForTest(t), "probe")
	ctx := context.Background()
	for _, k := range []int{10, 40, 165} {
		for _, form := range []string{"nested", "binary"} {
			c := db.Collection(fmt.Sprint("c", k, form))
			var es []bson.M
			for j := 0; j < k; j++ {
				es = append(es, bson.M{"i": fmt.Sprintf("2026-12-05T09|key%02d|gemini-2.5-flash|tok%d", j, j), "req": 3, "ok": 2, "pt": 360, "ct": 1020, "tok": 1500, "lat": 1500.0, "codes": bson.M{"429": 1}})
			}
			doc := bson.M{"_id": "x", "h": es}
			if form == "binary" {
				raw, _ := bson.Marshal(bson.M{"h": es})
				doc = bson.M{"_id": "x", "e": bson.Binary{Data: raw}}
			}
			t0 := time.Now()
			for i := 0; i < 5; i++ {
				doc["_id"] = fmt.Sprint("p", i)
				if _, err := c.InsertOne(ctx, doc); err != nil {
					t.Fatal(err)
				}
			}
			ins := time.Since(t0) / 5
			t0 = time.Now()
			for i := 0; i < 5; i++ {
				var m bson.M
				if err := c.FindOne(ctx, bson.M{"_id": fmt.Sprint("p", i)}).Decode(&m); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("entries=%3d %-6s: insert %.2f ms, FindOne %.2f ms", k, form, float64(ins.Microseconds())/1000, float64(time.Since(t0).Microseconds())/5/1000)
		}
	}
}
