package main

import "testing"

func TestParseTraceparent(t *testing.T) {
	const id = "0af7651916cd43dd8448eb211c80319c"
	cases := map[string]bool{
		"00-" + id + "-b7ad6b7169203331-01":                       true,
		" \t00-" + id + "-b7ad6b7169203331-01 ":                   true,
		"01-" + id + "-b7ad6b7169203331-01-future-part":           true,
		"01-" + id + "-b7ad6b7169203331-01":                       true,
		"ff-" + id + "-b7ad6b7169203331-01":                       false,
		"00-" + id + "-b7ad6b7169203331-01-extra":                 false,
		"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01": false,
		"00-00000000000000000000000000000000-b7ad6b7169203331-01": false,
		"00-" + id + "-0000000000000000-01":                       false,
		"00-" + id + "-b7ad6b716920333-01":                        false,
		"01-" + id + "-b7ad6b7169203331-01x":                      false,
	}
	for value, want := range cases {
		if _, got := parseTraceparent(value); got != want {
			t.Errorf("parseTraceparent(%q) = %v, want %v", value, got, want)
		}
	}
}

func TestParseTracestate(t *testing.T) {
	state, ok := parseTracestate([]string{"a=1, ,b=2", " c=3 "})
	if !ok || state.String() != "a=1,b=2,c=3" {
		t.Fatalf("got %q %v", state.String(), ok)
	}
	if _, ok := parseTracestate([]string{"a=1,a=2"}); ok {
		t.Fatal("a duplicated key must drop the list")
	}
}
