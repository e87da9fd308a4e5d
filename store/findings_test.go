package store

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestFindingsCommitAndRead(t *testing.T) {
	db := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	k1 := FindingKey{Kind: "unused_scope", Client: "lab-portal", Subject: "patient/*.read"}
	k2 := FindingKey{Kind: "token_in_url", Subject: "fhir-gw"}
	f1 := Finding{Severity: SeverityWarning, State: StateOpen, First: t0, Last: t0, Count: 1,
		Evidence: Evidence{Narrower: []string{"patient/Observation.rs"}, LastGrant: t0}}
	f1.Evidence.AddLine(LineRef{Source: "keycloak", Path: "/var/log/k.log", Line: 7, Offset: 700})
	b := NewBatch()
	st := NewState(db, 0)
	b.Findings[k1] = f1
	b.Findings[k2] = Finding{Severity: SeverityHigh, State: StateOpen, First: t0, Last: t0, Count: 2}
	b.Coverage["keycloak"] = []Span{{Start: t0, End: t0.Add(time.Hour)}}
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	got, err := db.Findings()
	if err != nil {
		t.Fatal(err)
	}
	f1.FindingKey = k1
	if len(got) != 2 || !reflect.DeepEqual(got[1], f1) {
		t.Fatalf("Findings() = %+v\nwant two, the second %+v", got, f1)
	}
	if got[0].FindingKey != k2 || got[0].Count != 2 {
		t.Errorf("Findings()[0] = %+v, want key %+v with count 2", got[0], k2)
	}
	cov, err := db.Coverage()
	if err != nil || len(cov["keycloak"]) != 1 || !cov["keycloak"][0].End.Equal(t0.Add(time.Hour)) {
		t.Errorf("Coverage() = %v, %v", cov, err)
	}

	b.Reset()
	b.DropFindings[k2] = struct{}{}
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Findings(); len(got) != 1 || got[0].FindingKey != k1 {
		t.Errorf("after drop Findings() = %+v, want only %+v", got, k1)
	}

	b.Reset()
	b.Findings[FindingKey{Kind: "unused_scope", Client: "a\x00b"}] = Finding{}
	b.SetPosition(Position{Source: "keycloak", File: FileID{1, 2}, Offset: 10})
	if err := db.Commit(b); !errors.Is(err, ErrInvalid) {
		t.Errorf("Commit(finding with 0 byte) = %v, want ErrInvalid", err)
	}
	if ps, _ := db.Positions("keycloak"); len(ps) != 0 {
		t.Errorf("a failed commit stored positions %v", ps)
	}
}

func TestEvidenceAddLineKeepsFirstAndNewest(t *testing.T) {
	var e Evidence
	for i := int64(1); i <= 9; i++ {
		e.AddLine(LineRef{Source: "s", Line: i})
	}
	var lines []int64
	for _, l := range e.Lines {
		lines = append(lines, l.Line)
	}
	if want := []int64{1, 6, 7, 8, 9}; !reflect.DeepEqual(lines, want) {
		t.Errorf("lines = %v, want %v", lines, want)
	}
}

func TestSilences(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	db := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{Now: func() time.Time { return t0 }})
	s, err := db.AddSilence(Silence{Client: "legacy-*", Kind: "unused_scope", Expires: t0.Add(48 * time.Hour), Reason: "retiring", Author: "ana"})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "s1" || !s.Created.Equal(t0) {
		t.Errorf("AddSilence = %+v, want ID s1 created %v", s, t0)
	}
	s2, err := db.AddSilence(Silence{Subject: "KP", Expires: t0.Add(time.Hour), Reason: "drill"})
	if err != nil || s2.ID != "s2" {
		t.Fatalf("second AddSilence = %+v, %v", s2, err)
	}
	got, err := db.ExpireSilence("s1", t0.Add(time.Hour))
	if err != nil || !got.Expires.Equal(t0.Add(time.Hour)) {
		t.Errorf("ExpireSilence = %+v, %v", got, err)
	}
	if _, err := db.ExpireSilence("s9", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("ExpireSilence(unknown) = %v, want ErrNotFound", err)
	}
	all, err := db.Silences()
	if err != nil || len(all) != 2 || all[0].Reason != "retiring" || all[1].Subject != "KP" {
		t.Errorf("Silences() = %+v, %v", all, err)
	}
}

func TestSilenceMatches(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	k := FindingKey{Kind: "unused_scope", Client: "legacy-export", Subject: "patient/*.read"}
	tests := []struct {
		name string
		s    Silence
		at   time.Time
		want bool
	}{
		{"client pattern", Silence{Client: "legacy-*"}, t0, true},
		{"other client", Silence{Client: "lab-*"}, t0, false},
		{"kind", Silence{Kind: "unused_scope"}, t0, true},
		{"other kind", Silence{Kind: "broad_request"}, t0, false},
		{"subject with slash", Silence{Subject: "patient/*"}, t0, true},
		{"subject exact", Silence{Subject: "patient/*.read"}, t0, true},
		{"expired", Silence{Client: "legacy-*"}, t0.Add(2 * time.Hour), false},
		{"at expiry", Silence{Client: "legacy-*"}, t0.Add(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.Expires = t0.Add(time.Hour)
			if got := tt.s.Matches(k, tt.at); got != tt.want {
				t.Errorf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMigrateFromSchema1 opens a file laid out by schema version 1 (no
// findings, silences or coverage buckets) and checks that it is upgraded
// in place with its clients and positions intact.
func TestMigrateFromSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	db := openTest(t, path, Options{})
	b := NewBatch()
	st := NewState(db, 0)
	st.Client("lab-portal").CountScope("openid", ScopeGranted, 3, t0)
	b.SetPosition(Position{Source: "keycloak", File: FileID{1, 2}, Offset: 42, Line: 3})
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	// Turn it into what version 1 wrote.
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketFindings, bucketSilences, bucketCoverage, bucketGroups, bucketOutbox, bucketDeadLetter} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, appendUvarint(nil, 1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrNotStore) {
		t.Errorf("read-only Open of a version 1 file = %v, want ErrNotStore asking to open it for writing", err)
	}

	db = openTest(t, path, Options{})
	if v, err := db.SchemaVersion(); err != nil || v != SchemaVersion {
		t.Errorf("SchemaVersion() after migration = %d, %v; want %d", v, err, SchemaVersion)
	}
	c, ok, err := db.Client("lab-portal")
	if err != nil || !ok || c.Scopes["openid"].Granted.N != 3 {
		t.Errorf("Client after migration = %+v, %v, %v", c, ok, err)
	}
	if ps, err := db.Positions("keycloak"); err != nil || len(ps) != 1 || ps[0].Offset != 42 {
		t.Errorf("Positions after migration = %+v, %v", ps, err)
	}
	if fs, err := db.Findings(); err != nil || len(fs) != 0 {
		t.Errorf("Findings after migration = %v, %v", fs, err)
	}
	if _, err := db.AddSilence(Silence{Kind: "unused_scope", Expires: t0, Reason: "x"}); err != nil {
		t.Errorf("AddSilence after migration: %v", err)
	}
}
