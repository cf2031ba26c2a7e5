// Package osrel identifies the operating system of a container image from
// its release files (/etc/os-release, /usr/lib/os-release and the older
// distribution-specific files) and names it the way vulnerability data
// does: an OSV ecosystem with its release, and the purl namespace and
// distro qualifier of its packages.
package osrel

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ossf/osv-schema/bindings/go/osvconstants"
)

// MaxFileSize is the largest release file read; real ones are under 1 KiB.
const MaxFileSize = 64 << 10

// Release files, relative to the image root, in the order they are
// trusted: os-release first, then the distribution files.
var releaseFiles = []string{
	"etc/os-release",
	"usr/lib/os-release",
	"etc/lsb-release",
	"etc/alpine-release",
	"etc/debian_version",
	"etc/system-release",
	"etc/redhat-release",
	"etc/centos-release",
	"etc/rocky-release",
	"etc/almalinux-release",
	"etc/oracle-release",
	"etc/fedora-release",
	"etc/SuSE-release",
	"etc/photon-release",
	"etc/mariner-release",
}

// markerFiles are files whose presence alone says something about the
// image (their content is not read).
var markerFiles = []string{
	"bin/busybox",
}

var wanted = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range releaseFiles {
		m[f] = true
	}
	return m
}()

// Wants reports whether the file at p (relative to the image root) is a
// release file whose content detection needs.
func Wants(p string) bool { return wanted[p] }

// IsMarker reports whether p is a file whose mere presence matters.
func IsMarker(p string) bool {
	for _, m := range markerFiles {
		if m == p {
			return true
		}
	}
	return false
}

// Distro is a detected operating system.
type Distro struct {
	// ID is the os-release ID ("debian", "alpine", "rhel", "amzn", ...).
	ID string `json:"id"`
	// VersionID is the os-release VERSION_ID ("12", "3.18.9", "9.4").
	VersionID string `json:"version_id,omitempty"`
	// Name is a readable name ("Debian GNU/Linux 12 (bookworm)").
	Name string `json:"name"`
	// Ecosystem is the OSV ecosystem of its packages with the release
	// ("Debian:12", "Alpine:v3.18", "Red Hat:9"); "" when vulnerability
	// data cannot be keyed for it.
	Ecosystem string `json:"ecosystem,omitempty"`
	// Variant notes a flavour that changes nothing for matching
	// ("distroless", "ubi", "bci").
	Variant string `json:"variant,omitempty"`
	// Source is the file the detection came from.
	Source string `json:"source"`
}

// PURLNamespace is the purl namespace of the distribution's packages
// (pkg:deb/debian/..., pkg:rpm/rhel/...).
func (d *Distro) PURLNamespace() string { return d.ID }

// DistroQualifier is the value of the purl "distro" qualifier
// ("debian-12", "alpine-3.18.9").
func (d *Distro) DistroQualifier() string {
	if d.VersionID == "" {
		return d.ID
	}
	return d.ID + "-" + d.VersionID
}

// Files is what detection looks at: the content of the release files
// present in the final image (by path relative to the root), and the
// marker files present.
type Files struct {
	Content map[string][]byte
	Present map[string]bool
}

// Detect names the operating system from the release files. It returns nil
// when the image has none (scratch, distroless static, busybox), with a
// note saying what was found instead.
func Detect(f Files) (*Distro, string) {
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if b, ok := f.Content[p]; ok {
			if d := fromOSRelease(ParseOSRelease(b), p, f); d != nil {
				return d, ""
			}
		}
	}
	if d := fromDistroFiles(f); d != nil {
		return d, ""
	}
	if f.Present["bin/busybox"] {
		return nil, "no operating system package manager found (busybox image): only language packages are indexed"
	}
	return nil, "no operating system found (scratch or distroless-static image): only language packages are indexed"
}

// ParseOSRelease parses an os-release file: KEY=value lines, the value
// optionally quoted with shell quoting rules for ", ' and \.
func ParseOSRelease(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), MaxFileSize)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		out[strings.TrimSpace(k)] = unquote(strings.TrimSpace(v))
	}
	return out
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		q := v[0]
		v = v[1 : len(v)-1]
		if q == '\'' {
			return v
		}
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		}
		return b.String()
	}
	return v
}

// major returns the part of a version before the first dot.
func major(v string) string {
	m, _, _ := strings.Cut(v, ".")
	return m
}

// majorMinor returns the first two dot-separated parts of a version.
func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

var leadingDigits = regexp.MustCompile(`^[0-9]+`)

func fromOSRelease(kv map[string]string, src string, f Files) *Distro {
	id := strings.ToLower(kv["ID"])
	if id == "" {
		return nil
	}
	vid := kv["VERSION_ID"]
	d := &Distro{ID: id, VersionID: vid, Name: kv["PRETTY_NAME"], Source: src}
	if d.Name == "" {
		d.Name = strings.TrimSpace(kv["NAME"] + " " + kv["VERSION"])
	}
	if strings.Contains(strings.ToLower(kv["PRETTY_NAME"]), "distroless") {
		d.Variant = "distroless"
	}
	switch id {
	case "debian":
		rel := major(vid)
		if rel == "" {
			// testing and unstable have no VERSION_ID; debian_version says
			// "trixie/sid", which no advisory feed keys on.
			if dv := strings.TrimSpace(string(f.Content["etc/debian_version"])); leadingDigits.MatchString(dv) {
				rel = major(dv)
				d.VersionID = rel
			}
		}
		d.Ecosystem = eco(osvconstants.EcosystemDebian, rel)
	case "ubuntu":
		d.Ecosystem = eco(osvconstants.EcosystemUbuntu, vid)
	case "alpine":
		d.Ecosystem = alpineEcosystem(vid)
	case "amzn":
		d.Ecosystem = eco("Amazon Linux", major(vid))
	case "rhel":
		d.Ecosystem = eco(osvconstants.EcosystemRedHat, major(vid))
		if strings.Contains(strings.ToLower(kv["NAME"]+kv["PRETTY_NAME"]), "ubi") || kv["VARIANT_ID"] != "" {
			d.Variant = strings.ToLower(kv["VARIANT_ID"])
		}
	case "centos":
		d.Ecosystem = eco("CentOS", major(vid))
	case "rocky":
		d.Ecosystem = eco(osvconstants.EcosystemRockyLinux, major(vid))
	case "almalinux":
		d.Ecosystem = eco(osvconstants.EcosystemAlmaLinux, major(vid))
	case "ol":
		d.Ecosystem = eco("Oracle Linux", major(vid))
	case "fedora":
		d.Ecosystem = eco("Fedora", major(vid))
	case "sles", "sled", "sle_hpc", "sle-micro", "suse":
		d.Ecosystem = suseEcosystem(id, vid)
		if v := strings.ToLower(kv["VARIANT_ID"]); strings.Contains(v, "bci") || strings.Contains(strings.ToLower(kv["NAME"]), "bci") {
			d.Variant = "bci"
		}
	case "opensuse-leap", "opensuse-tumbleweed", "opensuse-leap-micro", "opensuse":
		d.Ecosystem = openSUSEEcosystem(id, vid)
	case "wolfi":
		d.Ecosystem = string(osvconstants.EcosystemWolfi)
	case "chainguard":
		d.Ecosystem = string(osvconstants.EcosystemChainguard)
	case "photon":
		d.Ecosystem = eco(osvconstants.EcosystemPhotonOS, vid)
	case "mariner":
		d.Ecosystem = eco("Mariner", vid)
	case "azurelinux":
		d.Ecosystem = eco(osvconstants.EcosystemAzureLinux, vid)
	}
	return d
}

func eco(name osvconstants.Ecosystem, release string) string {
	if release == "" {
		return string(name)
	}
	return string(name) + ":" + release
}

// alpineEcosystem is "Alpine:vMAJOR.MINOR"; development snapshots
// ("3.21_alpha20240807") keep their major.minor too.
func alpineEcosystem(vid string) string {
	vid, _, _ = strings.Cut(vid, "_")
	if vid == "" {
		return string(osvconstants.EcosystemAlpine)
	}
	return string(osvconstants.EcosystemAlpine) + ":v" + majorMinor(vid)
}

// suseEcosystem is "SUSE:Linux Enterprise Server 15 SP5" for VERSION_ID
// 15.5, as SUSE's OSV data names its products.
func suseEcosystem(id, vid string) string {
	product := "Linux Enterprise Server"
	switch id {
	case "sled":
		product = "Linux Enterprise Desktop"
	case "sle-micro":
		product = "Linux Enterprise Micro"
		return eco(osvconstants.EcosystemSUSE, strings.TrimSpace(product+" "+vid))
	case "sle_hpc":
		product = "Linux Enterprise High Performance Computing"
	}
	maj, minor, _ := strings.Cut(vid, ".")
	rel := maj
	if n, err := strconv.Atoi(minor); err == nil && n > 0 {
		rel += " SP" + strconv.Itoa(n)
	}
	return eco(osvconstants.EcosystemSUSE, strings.TrimSpace(product+" "+rel))
}

func openSUSEEcosystem(id, vid string) string {
	switch id {
	case "opensuse-tumbleweed":
		return eco(osvconstants.EcosystemOpenSUSE, "Tumbleweed")
	case "opensuse-leap-micro":
		return eco(osvconstants.EcosystemOpenSUSE, strings.TrimSpace("Leap Micro "+vid))
	}
	return eco(osvconstants.EcosystemOpenSUSE, strings.TrimSpace("Leap "+vid))
}

// releaseLine matches "<name> release <version>" in redhat-release style
// files ("CentOS Linux release 7.9.2009 (Core)").
var releaseLine = regexp.MustCompile(`(?i)^(.*?)\s+release\s+([0-9][0-9.]*)`)

// fromDistroFiles identifies images without os-release (CentOS 6, old
// Alpine and Debian, Amazon Linux AMI).
func fromDistroFiles(f Files) *Distro {
	content := func(p string) string { return strings.TrimSpace(string(f.Content[p])) }
	if v := content("etc/alpine-release"); v != "" {
		return &Distro{ID: "alpine", VersionID: v, Name: "Alpine Linux " + v, Ecosystem: alpineEcosystem(v), Source: "etc/alpine-release"}
	}
	if kv := ParseOSRelease(f.Content["etc/lsb-release"]); strings.EqualFold(kv["DISTRIB_ID"], "ubuntu") && kv["DISTRIB_RELEASE"] != "" {
		v := kv["DISTRIB_RELEASE"]
		return &Distro{ID: "ubuntu", VersionID: v, Name: "Ubuntu " + v, Ecosystem: eco(osvconstants.EcosystemUbuntu, v), Source: "etc/lsb-release"}
	}
	for _, p := range []string{"etc/system-release", "etc/redhat-release", "etc/centos-release", "etc/rocky-release",
		"etc/almalinux-release", "etc/oracle-release", "etc/fedora-release", "etc/photon-release", "etc/mariner-release"} {
		line, _, _ := strings.Cut(content(p), "\n")
		m := releaseLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, ver := strings.ToLower(m[1]), m[2]
		d := &Distro{VersionID: ver, Name: strings.TrimSpace(line), Source: p}
		switch {
		case strings.Contains(name, "amazon linux ami"):
			d.ID, d.Ecosystem = "amzn", eco("Amazon Linux", "1")
		case strings.Contains(name, "amazon linux"):
			d.ID, d.Ecosystem = "amzn", eco("Amazon Linux", major(ver))
		case strings.Contains(name, "centos"):
			d.ID, d.Ecosystem = "centos", eco("CentOS", major(ver))
		case strings.Contains(name, "red hat"):
			d.ID, d.Ecosystem = "rhel", eco(osvconstants.EcosystemRedHat, major(ver))
		case strings.Contains(name, "rocky"):
			d.ID, d.Ecosystem = "rocky", eco(osvconstants.EcosystemRockyLinux, major(ver))
		case strings.Contains(name, "almalinux"):
			d.ID, d.Ecosystem = "almalinux", eco(osvconstants.EcosystemAlmaLinux, major(ver))
		case strings.Contains(name, "oracle"):
			d.ID, d.Ecosystem = "ol", eco("Oracle Linux", major(ver))
		case strings.Contains(name, "fedora"):
			d.ID, d.Ecosystem = "fedora", eco("Fedora", major(ver))
		case strings.Contains(name, "photon"):
			d.ID, d.Ecosystem = "photon", eco(osvconstants.EcosystemPhotonOS, majorMinor(ver))
		case strings.Contains(name, "mariner"):
			d.ID, d.Ecosystem = "mariner", eco("Mariner", majorMinor(ver))
		default:
			continue
		}
		return d
	}
	if v := content("etc/debian_version"); leadingDigits.MatchString(v) {
		return &Distro{ID: "debian", VersionID: major(v), Name: "Debian " + v, Ecosystem: eco(osvconstants.EcosystemDebian, major(v)), Source: "etc/debian_version"}
	}
	if kv := ParseOSRelease(f.Content["etc/SuSE-release"]); len(f.Content["etc/SuSE-release"]) > 0 {
		first, _, _ := strings.Cut(content("etc/SuSE-release"), "\n")
		ver := strings.TrimSpace(kv["VERSION"])
		if pl := strings.TrimSpace(kv["PATCHLEVEL"]); pl != "" {
			ver += "." + pl
		}
		if strings.Contains(strings.ToLower(first), "opensuse") {
			return &Distro{ID: "opensuse-leap", VersionID: ver, Name: first, Ecosystem: openSUSEEcosystem("opensuse-leap", ver), Source: "etc/SuSE-release"}
		}
		return &Distro{ID: "sles", VersionID: ver, Name: first, Ecosystem: suseEcosystem("sles", ver), Source: "etc/SuSE-release"}
	}
	return nil
}

// String is a readable one-line description.
func (d *Distro) String() string {
	if d == nil {
		return "none"
	}
	s := d.Name
	if s == "" {
		s = d.ID + " " + d.VersionID
	}
	if d.Ecosystem != "" {
		s += fmt.Sprintf(" [%s]", d.Ecosystem)
	}
	return s
}
