package qa

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Meta is what the report says of the run as a whole.
type Meta struct {
	Gateway string // "embedded (one per class)" or the URL
	Started time.Time
	Took    time.Duration
}

// WriteReport writes dir/index.md.
func WriteReport(dir string, results []Result, meta Meta) error {
	f, err := os.OpenFile(filepath.Join(dir, "index.md"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := Render(f, results, meta); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Render writes the report: a table a terminal shows as well as a
// Markdown viewer, then what failed and why.
func Render(w io.Writer, results []Result, meta Meta) error {
	passed := 0
	for _, r := range results {
		if r.Pass {
			passed++
		}
	}
	verdict := "PASS"
	if passed != len(results) {
		verdict = "FAIL"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# voicetui QA: %s (%d of %d classes as documented)\n\n", verdict, passed, len(results))
	fmt.Fprintf(&b, "Gateway: %s. Started %s, took %s", meta.Gateway, meta.Started.UTC().Format("2006-01-02 15:04:05 UTC"), meta.Took.Round(100*time.Millisecond))
	b.WriteString(".\nEach class: the user asks one question (question.wav); its folder holds events.jsonl, speaker.wav (what the user heard, on their timeline) and status.txt (the status pane). \"failure -> first sound\": from the error event to the signal's first sound written to the speaker (a simulated one, which plays it within its next 20 ms).\n\n")
	b.WriteString("| class | expected (docs/failures-and-events.md, \"When something fails\") | verdict | heard | failure -> first sound | folder |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range results {
		v := "pass"
		if !r.Pass {
			v = "**FAIL**"
		}
		heard := r.Heard
		if heard == "" {
			heard = "-"
		}
		signal := "-"
		if r.Signal >= 0 {
			signal = fmt.Sprintf("%.2f ms", float64(r.Signal.Microseconds())/1000)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | [%s/](%s/) |\n", r.Class.Title, cell(r.Class.Expect.Summary), v, heard, signal, r.Class.Name, r.Class.Name)
	}
	for _, r := range results {
		if r.Pass {
			continue
		}
		fmt.Fprintf(&b, "\n## %s (%s): FAIL\n\n", r.Class.Title, r.Class.Name)
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "- %s\n", cell(p))
		}
		if r.Status != "" {
			fmt.Fprintf(&b, "\nThe status pane at the failure:\n\n```\n%s\n```\n", r.Status)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell keeps text on one table line.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", "\\|")
}
