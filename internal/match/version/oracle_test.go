package version

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/testutil"
)

// An oracle is a real ecosystem tool that orders version pairs. It reads
// the file named by %IN% (or stdin) with one "a<TAB>b" pair a line and
// prints one line a pair: -1, 0 or 1, or E when the tool rejects either
// version.
type oracle struct {
	name string
	// cmd builds the command; in is the path of the pairs file.
	cmd func(t *testing.T, in string) *exec.Cmd
}

// verdict is one oracle answer.
type verdict struct {
	cmp     int
	invalid bool
}

func (o oracle) run(t *testing.T, ps [][2]string) []verdict {
	t.Helper()
	var buf bytes.Buffer
	for _, p := range ps {
		if strings.ContainsAny(p[0]+p[1], "\t\n\r") {
			t.Fatalf("pair %q cannot be sent to the oracle", p)
		}
		fmt.Fprintf(&buf, "%s\t%s\n", p[0], p[1])
	}
	in := filepath.Join(t.TempDir(), "pairs.tsv")
	if err := os.WriteFile(in, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := o.cmd(t, in)
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdin = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("oracle %s: %v\n%s", o.name, err, stderr.String())
	}
	var res []verdict
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue // rpm --eval ends with the (empty) expansion
		}
		if line == "E" {
			res = append(res, verdict{invalid: true})
			continue
		}
		n, err := strconv.Atoi(line)
		if err != nil {
			t.Fatalf("oracle %s printed %q", o.name, line)
		}
		res = append(res, verdict{cmp: sign(n)})
	}
	if len(res) != len(ps) {
		t.Fatalf("oracle %s answered %d of %d pairs\n%s", o.name, len(res), len(ps), stderr.String())
	}
	return res
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// agree compares Drydock's order with the oracle's, pair by pair. Pairs the
// oracle rejects are counted, not judged: advisories and package databases
// only carry versions their ecosystem accepts. It returns the number of
// pairs judged.
func agree(t *testing.T, s Scheme, o oracle, ps [][2]string) int {
	t.Helper()
	want := o.run(t, ps)
	judged, rejected, shown := 0, 0, 0
	for i, p := range ps {
		if want[i].invalid {
			rejected++
			continue
		}
		judged++
		a, err := s.Parse(p[0])
		if err == nil {
			var b Version
			b, err = s.Parse(p[1])
			if err == nil {
				if got := a.Compare(b); got != want[i].cmp {
					err = fmt.Errorf("got %d, %s says %d", got, o.name, want[i].cmp)
				}
			}
		}
		if err != nil {
			if shown < 40 {
				t.Errorf("%s: compare(%q, %q): %v", s, p[0], p[1], err)
			}
			shown++
		}
	}
	if shown > 0 {
		t.Errorf("%s: %d of %d pairs disagree with %s", s, shown, judged, o.name)
	}
	t.Logf("%s: %d pairs agree with %s; %d pairs it rejects were not judged", s, judged-shown, o.name, rejected)
	return judged
}

var (
	dpkgOracle = oracle{name: "dpkg (Dpkg::Version)", cmd: func(t *testing.T, _ string) *exec.Cmd {
		// libdpkg-perl is dpkg's own implementation of its version order;
		// it answers a whole batch from one process, unlike
		// dpkg --compare-versions (checked against it in TestDpkgOracleIsDpkg).
		return exec.Command(testutil.RequireTool(t, "perl"), "-MDpkg::Version", "-e", `
$| = 0;
while (my $l = <STDIN>) {
	chomp $l;
	my ($a, $b) = split /\t/, $l, -1;
	# Dpkg::Version takes a non-numeric epoch for part of the version;
	# dpkg itself rejects it ("epoch in version is not number").
	if (($a =~ /:/ && $a !~ /^\d+:/) || ($b =~ /:/ && $b !~ /^\d+:/)) { print "E\n"; next; }
	if (!Dpkg::Version->new($a)->is_valid() || !Dpkg::Version->new($b)->is_valid()) { print "E\n"; next; }
	print version_compare($a, $b), "\n";
}`)
	}}

	rpmOracle = oracle{name: "rpm (rpm.vercmp)", cmd: func(t *testing.T, in string) *exec.Cmd {
		return exec.Command(testutil.RequireTool(t, "rpm"), "--define", "_drydock_pairs "+in, "--eval", `%{lua:
for l in io.lines(rpm.expand("%{_drydock_pairs}")) do
	local a, b = string.match(l, "^(.*)\t(.*)$")
	io.write(rpm.vercmp(a, b), "\n")
end
}`)
	}}

	pep440Oracle = oracle{name: "python packaging", cmd: func(t *testing.T, _ string) *exec.Cmd {
		// Debian's python3-packaging, run by Debian's interpreter.
		return exec.Command(testutil.RequireTool(t, "/usr/bin/python3"), "-c", `
import sys
from packaging.version import Version, InvalidVersion
out = []
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    try:
        va, vb = Version(a), Version(b)
    except InvalidVersion:
        out.append("E")
        continue
    out.append(str((va > vb) - (va < vb)))
print("\n".join(out))
`)
	}}

	semverOracle = oracle{name: "node-semver", cmd: func(t *testing.T, _ string) *exec.Cmd {
		dir := npmSemver(t)
		cmd := exec.Command(testutil.RequireTool(t, "node"), "-e", `
const semver = require("semver");
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
const out = [];
for (const l of lines) {
	const [a, b] = l.split("\t");
	if (!semver.valid(a) || !semver.valid(b)) { out.push("E"); continue; }
	out.push(String(semver.compare(a, b)));
}
process.stdout.write(out.join("\n") + "\n");
`)
		cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
		return cmd
	}}

	mavenOracle = oracle{name: "Maven ComparableVersion", cmd: func(t *testing.T, _ string) *exec.Cmd {
		src := filepath.Join(t.TempDir(), "Cmp.java")
		prog := `import org.apache.maven.artifact.versioning.ComparableVersion;
import java.io.*;
public class Cmp {
	public static void main(String[] args) throws IOException {
		BufferedReader r = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
		StringBuilder out = new StringBuilder();
		for (String l; (l = r.readLine()) != null; ) {
			String[] p = l.split("\t", -1);
			out.append(Integer.signum(new ComparableVersion(p[0]).compareTo(new ComparableVersion(p[1])))).append('\n');
		}
		System.out.print(out);
	}
}
`
		if err := os.WriteFile(src, []byte(prog), 0o600); err != nil {
			t.Fatal(err)
		}
		return exec.Command(testutil.RequireTool(t, "java"), "-cp", testutil.RequireTool(t, mavenArtifactJar), src)
	}}

	rubyOracle = oracle{name: "RubyGems Gem::Version", cmd: func(t *testing.T, _ string) *exec.Cmd {
		return exec.Command(testutil.RequireTool(t, "ruby"), "-e", `
out = []
STDIN.each_line do |l|
  a, b = l.chomp.split("\t", -1)
  if Gem::Version.correct?(a) && Gem::Version.correct?(b)
    out << (Gem::Version.new(a) <=> Gem::Version.new(b)).to_s
  else
    out << "E"
  end
end
puts out
`)
	}}

	composerOracle = oracle{name: "composer/semver", cmd: func(t *testing.T, _ string) *exec.Cmd {
		return exec.Command(testutil.RequireTool(t, "php"), "-r", `
require "`+testutil.RequireTool(t, composerSemverAutoload)+`";
$p = new Composer\Semver\VersionParser();
while (($l = fgets(STDIN)) !== false) {
	[$a, $b] = explode("\t", rtrim($l, "\n"));
	try {
		$na = $p->normalize($a);
		$nb = $p->normalize($b);
	} catch (UnexpectedValueException $e) {
		echo "E\n";
		continue;
	}
	// Composer never matches a dev branch against a version range.
	if (str_starts_with($na, "dev-") || str_starts_with($nb, "dev-")) {
		echo "E\n";
		continue;
	}
	echo Composer\Semver\Comparator::compare($na, ">", $nb) ? 1 : (Composer\Semver\Comparator::compare($na, "==", $nb) ? 0 : -1), "\n";
}
`)
	}}
)

// Paths of oracles that are libraries rather than programs; installed by
// scripts/install-test-deps from Debian's packages.
const (
	mavenArtifactJar       = "/usr/share/maven/lib/maven-artifact-3.x.jar"
	composerSemverAutoload = "/usr/share/php/Composer/Semver/autoload.php"
)

// npmSemver installs node-semver (the npm CLI's own version library) into
// a temporary directory once per test binary.
func npmSemver(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "drydock-test-node-semver-7.8.6")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "semver", "package.json")); err == nil {
		return dir
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "node-semver-")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.RequireTool(t, "npm"), "install", "--no-audit", "--no-fund", "--prefix", tmp, "semver@7.8.6")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install semver: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, serr := os.Stat(dir); serr != nil {
			t.Fatal(err)
		}
	}
	return dir
}
