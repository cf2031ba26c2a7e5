package langutil

import (
	"errors"
	"strings"
	"testing"
)

func TestReadAll(t *testing.T) {
	if b, err := ReadAll(strings.NewReader("abc"), 3, 3); err != nil || string(b) != "abc" {
		t.Errorf("%q %v", b, err)
	}
	if _, err := ReadAll(strings.NewReader("abcd"), 3, 0); !errors.Is(err, ErrTooBig) {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := ReadAll(strings.NewReader(""), 3, 10); !errors.Is(err, ErrTooBig) {
		t.Errorf("declared over the limit: %v", err)
	}
}

// TestPURL checks package URLs against the purl specification's own
// examples of each type's rules.
func TestPURL(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{PURL("pypi", "", "Django_Allauth", "0.1"), "pkg:pypi/django-allauth@0.1"},
		{PURL("npm", "@angular", "animation", "12.3.1"), "pkg:npm/%40angular/animation@12.3.1"},
		{PURL("maven", "org.apache.xmlgraphics", "batik-anim", "1.9.1"), "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1"},
		{PURL("golang", "github.com/gorilla", "context", "234fd47e07d1004f0aed9c"), "pkg:golang/github.com/gorilla/context@234fd47e07d1004f0aed9c"},
		{PURL("gem", "", "ruby-advisory-db-check", "0.12.4"), "pkg:gem/ruby-advisory-db-check@0.12.4"},
		{PURL("nuget", "", "EnterpriseLibrary.Common", "6.0.1304"), "pkg:nuget/EnterpriseLibrary.Common@6.0.1304"},
		{PURL("cargo", "", "rand", "0.7.2"), "pkg:cargo/rand@0.7.2"},
		{PURL("composer", "laravel", "laravel", "5.5.0"), "pkg:composer/laravel/laravel@5.5.0"},
		{PURL("npm", "", "", "1"), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
