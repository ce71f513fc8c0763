package devserver_test

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/machinedash/sse/internal/config"
	"github.com/machinedash/sse/internal/devserver"
	"github.com/machinedash/sse/internal/sim"
)

// readRoot reads a file at the module root.
func readRoot(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the README section under heading (up to the next "## ").
func section(t *testing.T, readme, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("README has no section %q", heading)
	}
	body, _, _ := strings.Cut(rest, "\n## ")
	return body
}

// firstColumns returns the backticked words of the first column of every
// table row in text that match re.
func firstColumns(text string, re *regexp.Regexp) []string {
	var out []string
	tick := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(text, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "| ") || len(cells) < 3 {
			continue
		}
		for _, m := range tick.FindAllStringSubmatch(cells[1], -1) {
			if re.MatchString(m[1]) {
				out = append(out, m[1])
			}
		}
	}
	return out
}

// TestReadmeMatchesMakefile: README's table of targets lists exactly the
// Makefile's documented targets (those `make help` prints).
func TestReadmeMatchesMakefile(t *testing.T) {
	t.Parallel()
	var targets []string
	for _, m := range regexp.MustCompile(`(?m)^([a-z-]+):.*## `).FindAllStringSubmatch(readRoot(t, "Makefile"), -1) {
		targets = append(targets, "make "+m[1])
	}
	var documented []string
	for _, c := range firstColumns(section(t, readRoot(t, "README.md"), "Make targets"), regexp.MustCompile(`^make [a-z-]+( |$)`)) {
		documented = append(documented, strings.Join(strings.Fields(c)[:2], " ")) // "make smoke URL=..." -> "make smoke"
	}
	slices.Sort(targets)
	slices.Sort(documented)
	if len(targets) < 8 || !slices.Equal(targets, documented) {
		t.Fatalf("Makefile targets %v\nREADME targets   %v", targets, documented)
	}
}

// TestReadmeMatchesConfig: every environment name the service and the
// simulator read is in README's configuration section (an X_SECRET_ARN
// through its X_SECRET), every name in its table is read, and every local
// flag is described there.
func TestReadmeMatchesConfig(t *testing.T) {
	t.Parallel()
	conf := section(t, readRoot(t, "README.md"), "Configuration")
	read := config.Names()
	_, _ = sim.LoadSettings(func(k string) string {
		read = append(read, k)
		return ""
	})
	for _, name := range read {
		base := strings.TrimSuffix(name, "_ARN")
		if !strings.Contains(conf, "`"+base+"`") && !strings.Contains(conf, "`"+base+"` /") {
			t.Errorf("README's configuration lacks %s", name)
		}
	}
	for _, name := range firstColumns(conf, regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)) {
		if !slices.Contains(read, name) {
			t.Errorf("README's configuration table names %s, which nothing reads", name)
		}
	}
	if !strings.Contains(conf, "`X_SECRET_ARN`") {
		t.Error("README does not say that any X_SECRET may be given as X_SECRET_ARN")
	}
	var o devserver.Options
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	o.Register(fs)
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(conf, "`-"+f.Name+"`") && !strings.Contains(conf, "`-"+f.Name+" ") {
			t.Errorf("README's configuration lacks the flag -%s", f.Name)
		}
	})
	if n < 5 {
		t.Fatalf("only %d flags registered", n)
	}
}

// TestPlainMakeIsHelp: `make` with no target lists the targets, one line
// each, and builds nothing (it used to cross-compile every Lambda).
func TestPlainMakeIsHelp(t *testing.T) {
	t.Parallel()
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make on PATH")
	}
	cmd := exec.Command(mk, "-n", "--no-print-directory")
	cmd.Dir = filepath.Join("..", "..")
	dry, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(dry), "go build") || !strings.Contains(string(dry), "awk") {
		t.Fatalf("make -n: %v\n%s", err, dry)
	}
	cmd = exec.Command(mk, "--no-print-directory")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, want := range []string{"make help", "make dev", "make test", "make build", "make deploy"} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), want+" ") }) {
			t.Errorf("make does not list %q on a line of its own:\n%s", want, out)
		}
	}
}

// TestReadmeMatchesRedisContract: README's Redis table is the one rendered
// from the key table and the channel kinds (config.RedisTable), so a key,
// a channel or an event name cannot change in one and not the other.
func TestReadmeMatchesRedisContract(t *testing.T) {
	t.Parallel()
	contract := section(t, readRoot(t, "README.md"), "Redis contract")
	if want := config.RedisTable(); !strings.Contains(contract, "\n"+want+"\n") {
		t.Fatalf("README's Redis contract table is not config.RedisTable(); replace it with:\n%s", want)
	}
}
