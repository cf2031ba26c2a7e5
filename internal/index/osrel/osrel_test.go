package osrel_test

import (
	"os"
	"testing"

	"github.com/drydockhq/drydock/internal/index/osrel"
	"github.com/drydockhq/drydock/internal/testutil"
)

func TestDetectFixture(t *testing.T) {
	b, err := os.ReadFile(testutil.Fixture(t, "rootfs/bookworm-minbase.os-release"))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := osrel.Detect(osrel.Files{Content: map[string][]byte{"etc/os-release": b}})
	if d == nil || d.Ecosystem != "Debian:12" || d.DistroQualifier() != "debian-12" || d.PURLNamespace() != "debian" {
		t.Fatalf("got %+v", d)
	}
}

// The os-release and release files below are the ones these distributions
// ship (trimmed to the lines detection reads).
func TestDetect(t *testing.T) {
	cases := []struct {
		name, path, content string
		extra               map[string]string
		eco, distro         string
	}{
		{"ubuntu 22.04", "etc/os-release", "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian\n", nil, "Ubuntu:22.04", "ubuntu-22.04"},
		{"alpine 3.18", "etc/os-release", "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.18.9\nPRETTY_NAME=\"Alpine Linux v3.18\"\n", nil, "Alpine:v3.18", "alpine-3.18.9"},
		{"alpine edge", "etc/os-release", "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.21_alpha20240807\n", nil, "Alpine:v3.21", "alpine-3.21_alpha20240807"},
		{"amazon linux 2", "etc/os-release", "NAME=\"Amazon Linux\"\nVERSION=\"2\"\nID=\"amzn\"\nID_LIKE=\"centos rhel fedora\"\nVERSION_ID=\"2\"\nPRETTY_NAME=\"Amazon Linux 2\"\n", nil, "Amazon Linux:2", "amzn-2"},
		{"amazon linux 2023", "etc/os-release", "NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\nPRETTY_NAME=\"Amazon Linux 2023.5.20240805\"\n", nil, "Amazon Linux:2023", "amzn-2023"},
		{"ubi 9", "etc/os-release", "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.4 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.4 (Plow)\"\n", nil, "Red Hat:9", "rhel-9.4"},
		{"centos 7", "etc/os-release", "NAME=\"CentOS Linux\"\nVERSION=\"7 (Core)\"\nID=\"centos\"\nVERSION_ID=\"7\"\n", nil, "CentOS:7", "centos-7"},
		{"rocky 9", "etc/os-release", "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\nVERSION_ID=\"9.3\"\n", nil, "Rocky Linux:9", "rocky-9.3"},
		{"almalinux 9", "etc/os-release", "NAME=\"AlmaLinux\"\nVERSION=\"9.4 (Seafoam Ocelot)\"\nID=\"almalinux\"\nVERSION_ID=\"9.4\"\n", nil, "AlmaLinux:9", "almalinux-9.4"},
		{"oracle 8", "etc/os-release", "NAME=\"Oracle Linux Server\"\nVERSION=\"8.9\"\nID=\"ol\"\nVERSION_ID=\"8.9\"\n", nil, "Oracle Linux:8", "ol-8.9"},
		{"fedora 40", "etc/os-release", "NAME=\"Fedora Linux\"\nVERSION=\"40 (Container Image)\"\nID=fedora\nVERSION_ID=40\n", nil, "Fedora:40", "fedora-40"},
		{"sle bci 15.5", "usr/lib/os-release", "NAME=\"SLES\"\nVERSION=\"15-SP5\"\nVERSION_ID=\"15.5\"\nPRETTY_NAME=\"SUSE Linux Enterprise Server 15 SP5\"\nID=\"sles\"\nID_LIKE=\"suse\"\n", nil, "SUSE:Linux Enterprise Server 15 SP5", "sles-15.5"},
		{"opensuse leap", "usr/lib/os-release", "NAME=\"openSUSE Leap\"\nVERSION=\"15.6\"\nID=\"opensuse-leap\"\nVERSION_ID=\"15.6\"\n", nil, "openSUSE:Leap 15.6", "opensuse-leap-15.6"},
		{"opensuse tumbleweed", "usr/lib/os-release", "NAME=\"openSUSE Tumbleweed\"\nID=\"opensuse-tumbleweed\"\nVERSION_ID=\"20240801\"\n", nil, "openSUSE:Tumbleweed", "opensuse-tumbleweed-20240801"},
		{"wolfi", "etc/os-release", "ID=wolfi\nNAME=\"Wolfi\"\nPRETTY_NAME=\"Wolfi\"\nVERSION_ID=\"20230201\"\n", nil, "Wolfi", "wolfi-20230201"},
		{"chainguard", "etc/os-release", "ID=chainguard\nNAME=\"Chainguard\"\nPRETTY_NAME=\"Chainguard\"\nVERSION_ID=\"20230214\"\n", nil, "Chainguard", "chainguard-20230214"},
		{"photon 5", "etc/os-release", "NAME=\"VMware Photon OS\"\nVERSION=\"5.0\"\nID=photon\nVERSION_ID=5.0\n", nil, "Photon OS:5.0", "photon-5.0"},
		{"mariner 2", "etc/os-release", "NAME=\"Common Base Linux Mariner\"\nVERSION=\"2.0.20240628\"\nID=mariner\nVERSION_ID=\"2.0\"\n", nil, "Mariner:2.0", "mariner-2.0"},
		{"azure linux 3", "etc/os-release", "NAME=\"Microsoft Azure Linux\"\nVERSION=\"3.0.20240727\"\nID=azurelinux\nVERSION_ID=\"3.0\"\n", nil, "Azure Linux:3.0", "azurelinux-3.0"},
		{"distroless", "etc/os-release", "PRETTY_NAME=\"Distroless\"\nNAME=\"Debian GNU/Linux\"\nID=\"debian\"\nVERSION_ID=\"12\"\n", nil, "Debian:12", "debian-12"},
		{"debian sid", "etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nNAME=\"Debian GNU/Linux\"\nID=debian\n", map[string]string{"etc/debian_version": "trixie/sid\n"}, "Debian", "debian"},
		{"centos 6", "etc/redhat-release", "CentOS release 6.10 (Final)\n", map[string]string{"etc/system-release": "CentOS release 6.10 (Final)\n"}, "CentOS:6", "centos-6.10"},
		{"amazon linux 1", "etc/system-release", "Amazon Linux AMI release 2018.03\n", nil, "Amazon Linux:1", "amzn-2018.03"},
		{"old alpine", "etc/alpine-release", "3.4.6\n", nil, "Alpine:v3.4", "alpine-3.4.6"},
		{"old debian", "etc/debian_version", "8.11\n", nil, "Debian:8", "debian-8"},
		{"rhel 6", "etc/redhat-release", "Red Hat Enterprise Linux Server release 6.10 (Santiago)\n", nil, "Red Hat:6", "rhel-6.10"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := osrel.Files{Content: map[string][]byte{c.path: []byte(c.content)}}
			for p, v := range c.extra {
				files.Content[p] = []byte(v)
			}
			d, note := osrel.Detect(files)
			if d == nil {
				t.Fatalf("not detected: %s", note)
			}
			if d.Ecosystem != c.eco || d.DistroQualifier() != c.distro {
				t.Errorf("got ecosystem %q distro %q, want %q %q", d.Ecosystem, d.DistroQualifier(), c.eco, c.distro)
			}
		})
	}
}

func TestNoOS(t *testing.T) {
	d, note := osrel.Detect(osrel.Files{})
	if d != nil || note == "" {
		t.Errorf("scratch: %v %q", d, note)
	}
	d, note = osrel.Detect(osrel.Files{Present: map[string]bool{"bin/busybox": true}})
	if d != nil || note == "" {
		t.Errorf("busybox: %v %q", d, note)
	}
}

func FuzzParseOSRelease(f *testing.F) {
	b, err := os.ReadFile(testutil.Fixture(f, "rootfs/bookworm-minbase.os-release"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("ID='a b'\nVERSION_ID=\"1\\\"2\"\n#x\n=\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		kv := osrel.ParseOSRelease(in)
		for k := range kv {
			if k == "" {
				t.Fatal("empty key")
			}
		}
		d, _ := osrel.Detect(osrel.Files{Content: map[string][]byte{"etc/os-release": in, "etc/redhat-release": in, "etc/SuSE-release": in}})
		_ = d.String()
	})
}
