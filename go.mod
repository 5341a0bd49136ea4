module github.com/voicetui/voicetui

go 1.26
