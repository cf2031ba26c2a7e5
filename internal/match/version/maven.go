package version

import "strings"

// maven orders Maven versions as Maven's ComparableVersion does: the
// version splits at '.', at '-' (which opens a sub-list) and at every
// change between digits and letters (which opens a sub-list too);
// numbers compare by value, known qualifiers in the order alpha < beta <
// milestone < rc = cr < snapshot < "" = ga = final = release < sp, unknown
// qualifiers after them in lexical order; trailing zeros, empty strings and
// empty sub-lists are dropped ("1.0" = "1" = "1-0" = "1.0-ga").
//
// Hand-written rather than osv-scalibr's semantic.MavenVersion, which
// (v0.5.3) disagrees with ComparableVersion on pairs such as "2.0-jre" and
// "2.0.0.RC1-SNAPSHOT" (TestMavenAgainstComparableVersion) and allocates
// six times a comparison.
type maven struct{ items mvnList }

type mvnKind uint8

const (
	mvnInt mvnKind = iota
	mvnString
	mvnSub
)

// mvnItem is one item: a number (digits without leading zeros), a
// qualifier in its comparable form, or a sub-list.
type mvnItem struct {
	kind mvnKind
	s    string
	list mvnList
}

type mvnList []mvnItem

// mvnQualifiers are the known qualifiers in order; "" is the release.
var mvnQualifiers = [...]string{"alpha", "beta", "milestone", "rc", "snapshot", "", "sp"}

// mvnRelease is the comparable form of the release qualifier "".
const mvnRelease = "5"

func mvnQualifier(s string, followedByDigit bool) string {
	if followedByDigit && len(s) == 1 {
		switch s {
		case "a":
			s = "alpha"
		case "b":
			s = "beta"
		case "m":
			s = "milestone"
		}
	}
	switch s {
	case "ga", "final", "release":
		s = ""
	case "cr":
		s = "rc"
	}
	for i, q := range mvnQualifiers {
		if q == s {
			return string(rune('0' + i))
		}
	}
	return "7-" + s
}

func mvnParseItem(digits bool, s string) mvnItem {
	if digits {
		return mvnItem{kind: mvnInt, s: trimZeros(s)}
	}
	return mvnItem{kind: mvnString, s: mvnQualifier(s, false)}
}

func (it mvnItem) isNull() bool {
	switch it.kind {
	case mvnInt:
		return it.s == "0"
	case mvnString:
		return it.s == mvnRelease
	}
	return len(it.list) == 0
}

func parseMaven(s string) (ordered, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	// The parser keeps a stack of open lists; a list is closed (and
	// normalised) when parsing ends, innermost first.
	root := &mvnNode{}
	list := root
	var stack []*mvnNode
	stack = append(stack, root)
	open := func() {
		child := &mvnNode{}
		list.children = append(list.children, mvnNodeItem{node: child})
		list = child
		stack = append(stack, child)
	}
	add := func(it mvnItem) { list.children = append(list.children, mvnNodeItem{item: it}) }
	digits, start := false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' || c == '-':
			if i == start {
				add(mvnItem{kind: mvnInt, s: "0"})
			} else {
				add(mvnParseItem(digits, s[start:i]))
			}
			start = i + 1
			if c == '-' {
				open()
			}
		case isDigit(c):
			if !digits && i > start {
				// A qualifier followed by a number goes in a list of
				// its own, unless it starts the current list.
				if len(list.children) > 0 {
					open()
				}
				add(mvnItem{kind: mvnString, s: mvnQualifier(s[start:i], true)})
				start = i
				open()
			}
			digits = true
		default:
			if digits && i > start {
				add(mvnParseItem(true, s[start:i]))
				start = i
				open()
			}
			digits = false
		}
	}
	if len(s) > start {
		if !digits && len(list.children) > 0 {
			open() // a final qualifier too
		}
		add(mvnParseItem(digits, s[start:]))
	}
	for k := len(stack) - 1; k >= 0; k-- {
		stack[k].normalize()
	}
	return maven{items: root.freeze()}, nil
}

// mvnNode is a list under construction: lists are normalised after their
// sub-lists, so the parser needs pointers until the end.
type mvnNode struct{ children []mvnNodeItem }

type mvnNodeItem struct {
	item mvnItem
	node *mvnNode
}

func (n *mvnNode) isNull(c mvnNodeItem) bool {
	if c.node != nil {
		return len(c.node.children) == 0
	}
	return c.item.isNull()
}

// normalize drops null items from the end of the list, stepping over
// sub-lists but stopping at the last number or qualifier that counts.
func (n *mvnNode) normalize() {
	for i := len(n.children) - 1; i >= 0; i-- {
		c := n.children[i]
		if n.isNull(c) {
			n.children = append(n.children[:i], n.children[i+1:]...)
		} else if c.node == nil {
			break
		}
	}
}

func (n *mvnNode) freeze() mvnList {
	out := make(mvnList, len(n.children))
	for i, c := range n.children {
		if c.node != nil {
			out[i] = mvnItem{kind: mvnSub, list: c.node.freeze()}
		} else {
			out[i] = c.item
		}
	}
	return out
}

func (v maven) compare(o ordered) int {
	return mvnCompareLists(v.items, o.(maven).items)
}

func mvnCompareLists(a, b mvnList) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var c int
		switch {
		case i >= len(a):
			c = -mvnCompareNull(b[i])
		case i >= len(b):
			c = mvnCompareNull(a[i])
		default:
			c = mvnCompare(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// mvnCompareNull compares an item with a missing one.
func mvnCompareNull(it mvnItem) int {
	switch it.kind {
	case mvnInt:
		if it.s == "0" {
			return 0
		}
		return 1
	case mvnString:
		return strings.Compare(it.s, mvnRelease)
	}
	for _, sub := range it.list {
		if c := mvnCompareNull(sub); c != 0 {
			return c
		}
	}
	return 0
}

func mvnCompare(a, b mvnItem) int {
	switch a.kind {
	case mvnInt:
		if b.kind == mvnInt {
			return cmpNum(a.s, b.s)
		}
		return 1 // 1.1 > 1-sp and 1.1 > 1-1
	case mvnString:
		if b.kind == mvnString {
			return strings.Compare(a.s, b.s)
		}
		return -1 // 1.any < 1.1 and 1.any < 1-1
	}
	switch b.kind {
	case mvnInt:
		return -1 // 1-1 < 1.0.x
	case mvnString:
		return 1 // 1-1 > 1-sp
	}
	return mvnCompareLists(a.list, b.list)
}
