package report

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text makes s, a value that came from a log (a client id, a scope, a
// subject) or from the API, safe to print for people: in a terminal, a
// table cell, a Markdown document or a Slack message. Anyone who can reach
// a token endpoint chooses the client id it logs, and one holding an
// escape sequence, a carriage return or line feed, a bell or a bidi
// override (U+202E) would drive the terminal, forge a table row or
// reverse what a reader sees. Such a value is returned quoted, with those
// characters escaped (\x1b, \r, \n, \a, \u202e): C0 and C1 controls, DEL,
// format characters (the bidi controls among them), line and paragraph
// separators, and bytes that are not UTF-8. Any other value is returned as
// it is. JSON and CSV carry the exact value and do not use it.
func Text(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	return strconv.QuoteToGraphic(s)
}

// unsafeRune reports whether r must not reach a reader's screen as it is:
// everything that is not a letter, mark, number, punctuation, symbol or
// plain space (tab, newline and the other controls, format characters
// such as U+202E and U+200B).
func unsafeRune(r rune) bool { return !unicode.IsGraphic(r) }
