package logstore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// readsNoSecondaryIndex reports whether db is served by FerretDB (1.24),
// which reads no secondary index on either backend: on SQLite it sends the
// backend only a filter that is a lone _id equality and runs every other
// filter and sort in Go over every row; on PostgreSQL it pushes an equality
// down as `_jsonb->'f' @> value`, which no B-tree index serves (the plan is a
// sequential scan, _id included), and sorts in Go. An index there only costs
// writes: on SQLite a parse of each written document's JSON per index (about
// half of ingest's CPU), on PostgreSQL an index entry per row and index.
// TestFerretDBOnPostgresReadsNoSecondaryIndex checks the plan. MongoDB
// answers false.
func readsNoSecondaryIndex(ctx context.Context, db *mongo.Database) (bool, error) {
	var info bson.M
	if err := db.Client().Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, fmt.Errorf("ask the store what it is: %w", err)
	}
	_, ferret := info["ferretdbVersion"]
	return ferret, nil
}

// dropSecondaryIndexes drops every index of coll but _id's.
func dropSecondaryIndexes(ctx context.Context, coll *mongo.Collection, specs []mongo.IndexSpecification) error {
	for _, sp := range specs {
		if sp.Name == "_id_" {
			continue
		}
		if err := coll.Indexes().DropOne(ctx, sp.Name); err != nil {
			return fmt.Errorf("drop unused index %s on %s: %w", sp.Name, coll.Name(), err)
		}
	}
	return nil
}
