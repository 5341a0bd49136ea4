package safetext

import "testing"

func TestInert(t *testing.T) {
	cases := map[string]string{
		"Hello, world!\n":         "Hello, world!\n",
		"\x1b[31mred\x1b[0m":      "[31mred[0m",
		"tab\tkept \r\x07bell":    "tab\tkept bell",
		"\u009b31m C1 CSI":        "31m C1 CSI",
		"bad \xff utf8":           "bad  utf8",
		"line\u2028separator":     "lineseparator",
		" leading space is kept ": " leading space is kept ",
	}
	for in, want := range cases {
		if got := Inert(in); got != want {
			t.Errorf("Inert(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSanitize(t *testing.T) {
	cases := []struct {
		in    string
		limit int
		want  string
	}{
		{"plain", 10, "plain"},
		{"\x1b]0;title\x07hint\x1b[31m red", 50, "hint red"},
		{"line\nbreak\r\n\ttab", 50, "line break tab"},
		{"\u202eevil", 50, "evil"},
		{"abcdef", 3, "abc…"},
		{"bad \xff utf8", 50, "bad ? utf8"},
		// Words are never changed: redaction is not this package's job.
		{"Can you keep a secret? Who is the bearer of the ring?", 100, "Can you keep a secret? Who is the bearer of the ring?"},
	}
	for _, tc := range cases {
		if got := Sanitize(tc.in, tc.limit); got != tc.want {
			t.Errorf("Sanitize(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}
