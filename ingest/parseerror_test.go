package ingest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// checkParseError parses a line that must fail and checks the error: a
// *ParseError with the wanted reason and field, naming the source and
// line, carrying the offset, and dst returned as it was given (a line
// counts whole or not at all).
func checkParseError(t *testing.T, p Parser, line string, pos Position, dst []Event, wantReason, wantField string) {
	t.Helper()
	evs, err := p.Parse([]byte(line), pos, dst)
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("Parse error = %v (%d events), want a *ParseError", err, len(evs))
	}
	if pe.Reason != wantReason || pe.Field != wantField {
		t.Errorf("reason, field = %q, %q, want %q, %q (%v)", pe.Reason, pe.Field, wantReason, wantField, err)
	}
	switch {
	case len(evs) < len(dst) || (len(dst) > 0 && evs[0].Type != dst[0].Type):
		t.Errorf("got %d events with the error, want dst kept (%d)", len(evs), len(dst))
	case pe.Records == 0 && len(evs) != len(dst):
		t.Errorf("got %d events with the error, want dst unchanged (%d)", len(evs), len(dst))
	case pe.Records > 0 && pe.Record == 0:
		t.Errorf("a page with %d malformed records names none of them", pe.Records)
	}
	if msg := err.Error(); !strings.Contains(msg, pos.Source) || !strings.Contains(msg, fmt.Sprintf("line %d", pos.Line)) {
		t.Errorf("Error() = %q, want the source and line named", msg)
	}
	if pe.Offset != pos.Offset {
		t.Errorf("Offset = %d, want %d", pe.Offset, pos.Offset)
	}
}
