package hashkit

import "testing"

func TestHashTagKey(t *testing.T) {
	for _, tc := range []struct {
		key, tag, want string
		why            string
	}{
		{"user:{1000}:name", "{}", "1000", "text between the tags"},
		{"user:1000:name", "{}", "user:1000:name", "no opening char: whole key"},
		{"user:{1000:name", "{}", "user:{1000:name", "no closing char: whole key"},
		{"user:{}:name", "{}", "user:{}:name", "empty tag: whole key"},
		{"{}{abc}", "{}", "{}{abc}", "only the first opening char counts"},
		{"a{}b}", "{}", "a{}b}", "closing char right after opening: whole key, even with a later one"},
		{"{a}{b}", "{}", "a", "first pair wins"},
		{"{{a}}", "{}", "{a", "the first closing char after the first opening one"},
		{"x}y{z}", "{}", "z", "a closing char before the opening one is ignored"},
		{"abc{", "{}", "abc{", "opening char at the end"},
		{"{", "{}", "{", "opening char alone"},
		{"}", "{}", "}", "closing char alone"},
		{"", "{}", "", "empty key"},
		{"a$b$c", "$$", "b", "equal chars: the next one closes"},
		{"$$b$", "$$", "$$b$", "equal chars adjacent: empty tag, whole key"},
		{"$x", "$$", "$x", "equal chars, no second"},
		{"key{tag}", "", "key{tag}", "no hash_tag"},
		{"a\x00b\x00c", "\x00\x00", "b", "NUL bytes are ordinary chars"},
		{"\x80\xffx\xfe", "\xff\xfe", "x", "high bytes are ordinary chars"},
		{"ab", "ab", "ab", "tag chars adjacent in the key"},
		{"aXb", "ab", "X", "letters as tag chars"},
	} {
		got := HashTagKey([]byte(tc.key), tc.tag)
		if string(got) != tc.want {
			t.Errorf("HashTagKey(%q, %q) = %q, want %q (%s)", tc.key, tc.tag, got, tc.want, tc.why)
		}
	}
}

func TestHashTagKeyNoAlloc(t *testing.T) {
	key := []byte("user:{1000}:name")
	if n := testing.AllocsPerRun(100, func() { HashTagKey(key, "{}") }); n != 0 {
		t.Errorf("HashTagKey allocates %v times", n)
	}
	got := HashTagKey(key, "{}")
	if &got[0] != &key[6] {
		t.Error("HashTagKey does not return a subslice of the key")
	}
}
