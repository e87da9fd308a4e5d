package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNewestEvents(t *testing.T) {
	m := NewMetrics(nil)
	m.Newest.now = func() time.Time { return t0.Add(90 * time.Second) }
	m.Newest.Saw("keycloak", t0)
	m.Newest.Saw("keycloak", t0.Add(-time.Hour)) // older: ignored
	m.Newest.Saw("api", time.Time{})             // no event: nothing
	want := `
# HELP scopewatch_source_lag_seconds How far the newest committed event of the source is behind the clock.
# TYPE scopewatch_source_lag_seconds gauge
scopewatch_source_lag_seconds{source="keycloak"} 90
# HELP scopewatch_source_newest_event_timestamp_seconds Time of the newest event of the source whose effects are committed.
# TYPE scopewatch_source_newest_event_timestamp_seconds gauge
scopewatch_source_newest_event_timestamp_seconds{source="keycloak"} 1.7882208e+09
`
	if err := testutil.CollectAndCompare(m.Newest, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
