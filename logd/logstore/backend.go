package logstore

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// onlyIDPushdown reports whether db is served by FerretDB on SQLite. There
// FerretDB 1.24 sends the backend only a filter that is a lone _id equality;
// every other filter and sort runs in Go over every row, so a secondary index
// is never read. It still costs a parse of each written document's JSON per
// index (SQLite evaluates the index expressions on insert): about half of
// ingest's CPU. MongoDB and FerretDB on PostgreSQL answer false.
func onlyIDPushdown(ctx context.Context, db *mongo.Database) (bool, error) {
	admin := db.Client().Database("admin")
	var info bson.M
	if err := admin.RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return false, fmt.Errorf("ask the store what it is: %w", err)
	}
	if _, ferret := info["ferretdbVersion"]; !ferret {
		return false, nil
	}
	// FerretDB names its backend in its start-up warnings ("Powered by
	// FerretDB v1.24.2 and SQLite 3.x."), once a database has been opened.
	var warnings struct {
		Log []string `bson:"log"`
	}
	if err := admin.RunCommand(ctx, bson.D{{Key: "getLog", Value: "startupWarnings"}}).Decode(&warnings); err != nil {
		return false, fmt.Errorf("ask FerretDB for its backend: %w", err)
	}
	for _, l := range warnings.Log {
		if strings.Contains(l, " and SQLite ") {
			return true, nil
		}
	}
	return false, nil
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
