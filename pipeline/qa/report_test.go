package qa

import (
	"strings"
	"testing"
	"time"
)

func TestRenderReport(t *testing.T) {
	pass := Result{Class: Classes[1], Pass: true, Heard: "quota", Signal: 1234 * time.Microsecond}
	happy := Result{Class: Classes[0], Pass: true, Signal: -1}
	failed := Result{Class: Classes[8], Signal: -1, Problems: []string{"no unavailable played", "closed with reason \"input_ended\", want \"error\" | odd"},
		Status: "╭──╮\n│ STT error │\n╰──╯"}
	var b strings.Builder
	err := Render(&b, []Result{happy, pass, failed}, Meta{Gateway: "embedded, one per class", Started: time.Date(2026, 11, 29, 21, 0, 0, 0, time.UTC), Took: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	got := b.String()
	for _, want := range []string{
		"# voicetui QA: FAIL (2 of 3 classes as documented)",
		"Gateway: embedded, one per class. Started 2026-11-29 21:00:00 UTC, took 20s.",
		"| happy path | the reply plays; no error, no clip | pass | - | - | [happy/](happy/) |",
		"| LLM credits used up | terminal at the first 429: the quota clip, the hint shown, closed | pass | quota | 1.23 ms | [llm_credits/](llm_credits/) |",
		"| wrong credentials (401) | terminal at the first response: the unavailable clip, closed | **FAIL** | - | - | [unauthorized/](unauthorized/) |",
		"## wrong credentials (401) (unauthorized): FAIL",
		"- no unavailable played\n",
		`want "error" \| odd`, // a pipe cannot break the table
		"```\n╭──╮\n│ STT error │\n╰──╯\n```",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "## happy path") || strings.Contains(got, "## LLM credits") {
		t.Errorf("a section for a class that passed:\n%s", got)
	}
	b.Reset()
	Render(&b, []Result{happy, pass}, Meta{})
	if !strings.HasPrefix(b.String(), "# voicetui QA: PASS (2 of 2 classes as documented)") {
		t.Error(b.String())
	}
}

func TestSelect(t *testing.T) {
	all, err := Select(nil)
	if err != nil || len(all) != len(Classes) {
		t.Fatal(all, err)
	}
	two, err := Select([]string{"tts_credits", "happy"})
	if err != nil || len(two) != 2 || two[0].Name != "tts_credits" {
		t.Fatal(two, err)
	}
	if _, err := Select([]string{"nope"}); err == nil || !strings.Contains(err.Error(), "happy, llm_credits") {
		t.Fatal(err)
	}
	if u, err := ControlURL("http://127.0.0.1:7890/v1"); err != nil || u != "http://127.0.0.1:7890/control" {
		t.Fatal(u, err)
	}
	if _, err := ControlURL("127.0.0.1:7890"); err == nil {
		t.Fatal("a URL without a scheme was taken")
	}
}
