package main

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cachev1 "github.com/elcache/elcache/proto/cache/v1"
	"github.com/elcache/elcache/storage/sqlstore"
	"github.com/elcache/elcache/storage/sqlstore/pgtest"
)

// TestSystemWriteBackKill9: three real processes in front of a real
// PostgreSQL. Write-back puts are acknowledged while the database is down,
// the process leading the most partitions is killed with SIGKILL before
// anything could be flushed, and the database comes back. Every
// acknowledged write reaches the database at its last acknowledged
// version, PostgreSQL's own audit trigger sees each key's versions only
// grow (none written twice), and the killed node's return writes nothing
// again.
func TestSystemWriteBackKill9(t *testing.T) {
	pg := pgtest.Start(t)
	store, err := sqlstore.Open(context.Background(), pg.URL(), sqlstore.Options{CreateTable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db, err := sql.Open("pgx", pg.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`CREATE TABLE audit (seq bigserial PRIMARY KEY, key bytea NOT NULL, version bigint NOT NULL)`,
		`CREATE FUNCTION audit_row() RETURNS trigger AS $$ BEGIN
			INSERT INTO audit (key, version) VALUES (NEW.key, NEW.version); RETURN NEW; END $$ LANGUAGE plpgsql`,
		`CREATE TRIGGER audit_rows AFTER INSERT OR UPDATE ON elcache_entries FOR EACH ROW EXECUTE FUNCTION audit_row()`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	c := startCluster(t, "--backend", pg.URL())
	db.Close() // reopened after the outage

	counts := make(map[string]int)
	for _, id := range c.leaders(0) {
		counts[id]++
	}
	victim, most := 0, -1
	for i, id := range c.ids {
		if counts[id] > most {
			victim, most = i, counts[id]
		}
	}
	via := (victim + 1) % clusterSize

	pg.Stop()
	acked := make(map[string]uint64)
	for round := range 5 {
		for i := range 40 {
			k := fmt.Sprintf("wb9-%d", i)
			for attempt := 0; ; attempt++ {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := c.caches[via].Put(ctx, &cachev1.PutRequest{Key: []byte(k), Value: []byte(fmt.Sprintf("r%d", round)),
					Options: &cachev1.WriteOptions{Mode: cachev1.WriteMode_WRITE_MODE_WRITE_BACK}})
				cancel()
				if err == nil {
					acked[k] = resp.Version
					break
				}
				if status.Code(err) != codes.Unavailable || attempt > 20 {
					t.Fatalf("write-back put %s with the database down: %v", k, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	c.procs[victim].kill()
	t.Logf("SIGKILLed %s (leading %d of %d partitions) after %d acknowledged write-back puts", c.procs[victim].name, most, clusterPartitions, 200)
	pg.Restart()

	dirty := func(i int) uint64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := c.caches[i].Stats(ctx, &cachev1.StatsRequest{})
		if err != nil {
			return 1
		}
		return st.DirtyKeys
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, i := range c.up() {
		for dirty(i) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s still holds unflushed write-back entries", c.procs[i].name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	check := func(when string) {
		for k, v := range acked {
			row, ok, err := store.Load(context.Background(), []byte(k))
			if err != nil || !ok || row.Version != v || string(row.Value) != "r4" {
				t.Errorf("%s: row of %s = %+v (found %v, %v), want r4 at version %d", when, k, row, ok, err, v)
			}
		}
		db, err := sql.Open("pgx", pg.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(`SELECT key, version FROM audit ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		seen := make(map[string][]int64)
		n := 0
		for rows.Next() {
			var k []byte
			var v int64
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			if vs := seen[string(k)]; len(vs) > 0 && v <= vs[len(vs)-1] {
				t.Errorf("%s: key %s written at version %d after %d: twice or out of order", when, k, v, vs[len(vs)-1])
			}
			seen[string(k)] = append(seen[string(k)], v)
			n++
		}
		t.Logf("%s: %d acknowledged puts over %d keys, %d row writes in the database", when, 200, len(acked), n)
	}
	check("after the flush")

	// The killed node comes back with its own copy of the dirty entries;
	// it must not write them again.
	c.procs[victim].start()
	c.procs[victim].waitServing(45 * time.Second)
	c.waitConverged(30 * time.Second)
	time.Sleep(500 * time.Millisecond)
	check("after the killed node returned")
}
