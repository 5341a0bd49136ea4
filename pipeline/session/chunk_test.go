package session

import (
	"slices"
	"testing"
)

func TestChunker(t *testing.T) {
	var c chunker
	var got []string
	for _, tok := range []string{"Well, ", "the weather today, as far as I know", ", is fine. ", "It is 3.5 degrees", "! Bye"} {
		got = append(got, c.add(tok)...)
	}
	got = append(got, c.rest())
	want := []string{"Well, the weather today,", "as far as I know, is fine.", "It is 3.5 degrees!", "Bye"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

// A reply in Japanese or Chinese is cut at its own punctuation, which no
// space follows, so TTS starts before the reply is over.
func TestChunkerWidePunctuation(t *testing.T) {
	for _, tc := range []struct {
		tokens []string
		want   []string // pieces, in order; the last is rest()
		early  int      // pieces out before the last token (a mark at the very end waits for the next rune: a closing quote may follow)
	}{
		{[]string{"こんにちは。", "今日はいい天気", "ですね！散歩に", "行きましょうか？", "はい"},
			[]string{"こんにちは。", "今日はいい天気ですね！", "散歩に行きましょうか？", "はい"}, 2},
		{[]string{"我觉得今天的天气非常好，", "我们去公园散步吧。", "好"},
			[]string{"我觉得今天的天气非常好，", "我们去公园散步吧。", "好"}, 1},
		{[]string{"彼は「はい。", "」と言った。", "それだけ"},
			[]string{"彼は「はい。」", "と言った。", "それだけ"}, 1},
	} {
		var c chunker
		var got []string
		for i, tok := range tc.tokens {
			got = append(got, c.add(tok)...)
			if i == len(tc.tokens)-2 && len(got) != tc.early {
				t.Errorf("%q: %d pieces before the last token, want %d: %q", tc.tokens, len(got), tc.early, got)
			}
		}
		got = append(got, c.rest())
		if !slices.Equal(got, tc.want) {
			t.Errorf("got %q\nwant %q", got, tc.want)
		}
	}
}
