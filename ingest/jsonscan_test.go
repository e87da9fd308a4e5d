package ingest

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestJSONScanCaptures(t *testing.T) {
	paths := newJSONPaths()
	a := paths.addDotted("a")
	bc := paths.addDotted("b.c")
	dotted := paths.addDotted("x.y.z")
	tests := []struct {
		name string
		doc  string
		want [3]string // captured text of a, b.c, x.y.z; "-" when absent
	}{
		{"flat", `{"a":"one","b":{"c":2}}`, [3]string{"one", "2", "-"}},
		{"nested skip", `{"q":[{"a":"no"}],"b":{"d":{"c":"no"},"c":[1,{"c":3}]},"a":true}`, [3]string{"true", `[1,{"c":3}]`, "-"}},
		{"last duplicate wins", `{"a":"1","a":"2"}`, [3]string{"2", "-", "-"}},
		{"escaped key", `{"\u0061":"k"}`, [3]string{"k", "-", "-"}},
		{"dotted key names", `{"x.y.z":"flat"}`, [3]string{"-", "-", "flat"}},
		{"partly dotted", `{"x":{"y.z":"mid"}}`, [3]string{"-", "-", "mid"}},
		{"fully nested", `{"x":{"y":{"z":null}}}`, [3]string{"-", "-", "null"}},
		{"object value", `{"a":{"c":1}, "b" : { "c" : "s p" } }`, [3]string{`{"c":1}`, "s p", "-"}},
		{"not an object", `["a","b"]`, [3]string{"-", "-", "-"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newJSONScanner(paths)
			if _, err := s.scan([]byte(tt.doc)); err != nil {
				t.Fatalf("scan: %v", err)
			}
			var got [3]string
			for i, slot := range []int{a, bc, dotted} {
				v := s.vals[slot]
				switch {
				case v.kind == jsonAbsent:
					got[i] = "-"
				case v.kind == jsonNull:
					got[i] = "null"
				default:
					got[i] = string(v.raw)
				}
			}
			if got != tt.want {
				t.Errorf("captures = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestJSONScanInvalid(t *testing.T) {
	docs := []string{
		``, ` `, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `[1,]`, `[1 2]`, `{"a":1 "b":2}`,
		`"abc`, `"a\qb"`, `"\u12G4"`, "\"a\x01b\"", `01`, `1.`, `-`, `1e`, `1e+`, `.5`, `tru`, `nul`,
		`{"a":1}}`, `{} {}`, `{"a":[}`, strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
	}
	for _, doc := range docs {
		t.Run(doc, func(t *testing.T) {
			s := newJSONScanner(newJSONPaths())
			_, err := s.scan([]byte(doc))
			if err == nil {
				t.Errorf("scan(%q) = nil error, want a syntax error", doc)
			}
			if json.Valid([]byte(doc)) {
				t.Errorf("encoding/json accepts %q", doc)
			}
		})
	}
}

func TestAppendJSONUnescaped(t *testing.T) {
	tests := []string{
		`plain`, `q\"uote`, `back\\slash`, `sl\/ash`, `\b\f\n\r\t`, `caf\u00e9`, `\u20ac`,
		`\ud83d\ude00 pair`, `lone \ud83d high`, `lone \ude00 low`, `\ud83d\u0041 high then BMP`,
		`\ud83d\ud83d\ude00 double high`, `end \ud83d`, `\u0000nul`,
	}
	for _, in := range tests {
		t.Run(in, func(t *testing.T) {
			var want string
			if err := json.Unmarshal([]byte(`"`+in+`"`), &want); err != nil {
				t.Fatal(err)
			}
			got := string(appendJSONUnescaped(nil, []byte(in)))
			if got != want {
				t.Errorf("appendJSONUnescaped(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

func TestJSONScanDepthLimit(t *testing.T) {
	doc := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	s := newJSONScanner(newJSONPaths())
	if _, err := s.scan([]byte(doc)); err != nil {
		t.Errorf("scan at the depth limit: %v", err)
	}
}

// FuzzJSONScan checks that the scanner agrees with encoding/json on which
// documents are valid, and on the decoded value of captured strings.
func FuzzJSONScan(f *testing.F) {
	for _, format := range []string{"keycloak", "json"} {
		for _, path := range fixturesF(f, format) {
			data, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			for _, line := range strings.Split(string(data), "\n") {
				f.Add([]byte(line))
			}
		}
	}
	for _, s := range []string{`{"a":"\ud83d\ude00","b":{"c":"x\u00e9"}}`, `[1,2.5e-3,true,false,null]`, `"\uD800"`, `{"a":1,"a":"dup"}`} {
		f.Add([]byte(s))
	}
	paths := newJSONPaths()
	a := paths.addDotted("a")
	bc := paths.addDotted("b.c")
	s := newJSONScanner(paths)
	f.Fuzz(func(t *testing.T, doc []byte) {
		kind, err := s.scan(doc)
		if got, want := err == nil, json.Valid(doc); got != want {
			t.Fatalf("scan(%q) valid = %v (%v), encoding/json says %v", doc, got, err, want)
		}
		if err != nil || kind != jsonObject || !utf8.Valid(doc) {
			return
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(doc, &top); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		check := func(name string, raw json.RawMessage, v jsonValue) {
			var want string
			if json.Unmarshal(raw, &want) != nil {
				return // not a string
			}
			if v.kind != jsonString {
				t.Fatalf("%s: scanner kind %v for a string %s", name, v.kind, raw)
			}
			got := string(appendJSONUnescaped(nil, v.raw))
			if got != want {
				t.Fatalf("%s = %q, encoding/json decodes %q", name, got, want)
			}
		}
		if raw, ok := top["a"]; ok {
			check("a", raw, s.vals[a])
		}
		if raw, ok := top["b"]; ok {
			var sub map[string]json.RawMessage
			if json.Unmarshal(raw, &sub) == nil {
				if c, ok := sub["c"]; ok {
					check("b.c", c, s.vals[bc])
				}
			}
		}
	})
}
