package rules

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// problemLine returns the line a YAML parser problem is on. yaml.v3 names
// the line where the enclosing block or flow collection starts (libyaml's
// context mark) instead of the line the parser could not go on at (the
// problem mark, which it does not expose; go.yaml.in/yaml/v3 decode.go,
// (*parser).fail): a mis-indented line 7 in a list item that starts on
// line 4 is reported at line 4. The shortest prefix of data that ends on
// or after line and fails with the same problem ends on the line that
// caused it; without one, line stands.
func problemLine(data []byte, line int, problem string) int {
	start, k := 0, 0
	for start < len(data) {
		end := len(data)
		if i := bytes.IndexByte(data[start:], '\n'); i >= 0 {
			end = start + i + 1
		}
		k++
		if k >= line && prefixFails(data[:end], problem) {
			return k
		}
		start = end
	}
	return line
}

// prefixFails reports whether parsing data's documents fails with problem.
func prefixFails(data []byte, problem string) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		switch {
		case errors.Is(err, io.EOF):
			return false
		case err != nil:
			return strings.HasSuffix(err.Error(), ": "+problem)
		}
	}
}
