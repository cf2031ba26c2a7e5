package scan

import "regexp"

func regexpQuote(s string) string { return regexp.QuoteMeta(s) }

func mustMatch(re, s string) bool { return regexp.MustCompile("(?s)" + re).MatchString(s) }
