package ingest

// eachRecord calls record for every object of the JSON array s (an API's
// page of log records); record appends the object's events to dst. Each
// record counts on its own: a malformed one loses only its own events, and
// the line's error then names the first such record and how many there
// were (ParseError.Record, Records), beside the events of the others. A
// record that is ignored is passed over. A syntax error in the array
// itself makes the whole line bad_json, as nothing after it can be trusted.
func eachRecord(sc *jsonScanner, s []byte, pos Position, name string, dst []Event, record func([]Event) ([]Event, error)) ([]Event, error) {
	n := len(dst)
	var first *ParseError
	bad, index, events := 0, 0, 0
	err := eachObject(sc, s, func() error {
		index++
		before := len(dst)
		out, err := record(dst)
		skip, pe := Outcome(err)
		switch {
		case pe != nil:
			dst = out[:before]
			bad++
			if first == nil {
				first = pe
				first.Record = index
			}
		case skip == "":
			dst = out
			events += len(out) - before
		}
		return nil
	})
	if err != nil {
		if se, ok := err.(*jsonSyntaxError); ok {
			err = wrapLineError(pos, name, "", ReasonBadJSON, se)
		}
		return dst[:n], err
	}
	if first != nil {
		first.Records = bad
		return dst, first
	}
	if events == 0 {
		return dst, SkipOtherEvent // an empty page, or one of events of no interest
	}
	return dst, nil
}

// eachObject scans s, a JSON array, with sc and calls visit for each
// element that is an object, with the element's captures in sc.vals;
// other elements are skipped. It returns the first error of visit, or a
// *jsonSyntaxError when s is not valid JSON.
func eachObject(sc *jsonScanner, s []byte, visit func() error) error {
	sc.begin(s)
	sc.i++ // '['
	sc.depth = 1
	sc.ws()
	if sc.i < len(s) && s[sc.i] == ']' {
		sc.i++
	} else {
		for {
			clear(sc.vals)
			isObj := sc.peekKind() == jsonObject
			if err := sc.value(0); err != nil {
				return err
			}
			if isObj {
				if err := visit(); err != nil {
					return err
				}
			}
			sc.ws()
			if sc.i >= len(s) {
				return sc.fail("unterminated array")
			}
			if s[sc.i] == ',' {
				sc.i++
				sc.ws()
				continue
			}
			if s[sc.i] != ']' {
				return sc.fail("expected ',' or ']' in array")
			}
			sc.i++
			break
		}
	}
	sc.ws()
	if sc.i != len(s) {
		return sc.fail("data after the top-level value")
	}
	return nil
}
