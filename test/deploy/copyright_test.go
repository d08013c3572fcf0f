package deploy

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// copyrightFormat is the Format: of a machine-readable debian/copyright
// (Debian policy 12.5, copyright-format 1.0).
const copyrightFormat = "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"

// paragraph is one deb822 paragraph: field name → value (continuation
// lines joined with "\n", their leading space removed, "." lines empty).
type paragraph map[string]string

// parseDeb822 splits text into paragraphs (RFC-822-like, Debian policy
// 5.1): fields "Name: value", continuation lines start with a space or a
// tab, paragraphs are separated by blank lines.
func parseDeb822(text string) ([]paragraph, error) {
	var ps []paragraph
	var cur paragraph
	var last string
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			cur, last = nil, ""
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("line %d: continuation line outside a field", n)
			}
			v := strings.TrimSpace(line)
			if v == "." {
				v = ""
			}
			cur[last] += "\n" + v
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("line %d: %q is not a field", n, line)
			}
			if cur == nil {
				cur = paragraph{}
				ps = append(ps, cur)
			}
			if _, dup := cur[name]; dup {
				return nil, fmt.Errorf("line %d: field %s twice in a paragraph", n, name)
			}
			cur[name], last = strings.TrimSpace(value), name
		}
	}
	return ps, sc.Err()
}

// licenseNames are the short names of a License: synopsis ("Apache-2.0
// and Expat").
func licenseNames(synopsis string) []string {
	first, _, _ := strings.Cut(synopsis, "\n")
	var names []string
	for _, f := range strings.FieldsFunc(first, func(r rune) bool { return r == ',' || r == ' ' }) {
		if f != "and" && f != "or" {
			names = append(names, f)
		}
	}
	return names
}

// checkCopyright checks the file's form: the header paragraph, Files
// paragraphs with Copyright and License, `Files: *` first, and a
// stand-alone License paragraph with text for every short name used.
// It returns the Files paragraphs.
func checkCopyright(text string) ([]paragraph, error) {
	ps, err := parseDeb822(text)
	if err != nil {
		return nil, err
	}
	if len(ps) < 2 || ps[0]["Format"] != copyrightFormat || ps[0]["Upstream-Name"] == "" {
		return nil, fmt.Errorf("the first paragraph must be the header: Format: %s and Upstream-Name", copyrightFormat)
	}
	var files []paragraph
	texts := map[string]bool{}
	used := map[string]bool{}
	for i, p := range ps[1:] {
		lic, hasLic := p["License"]
		switch _, isFiles := p["Files"]; {
		case !hasLic:
			return nil, fmt.Errorf("paragraph %d has no License field", i+2)
		case isFiles:
			if p["Files"] == "" || p["Copyright"] == "" || lic == "" {
				return nil, fmt.Errorf("Files paragraph %d (%s): Files, Copyright and License are required", i+2, p["Files"])
			}
			if len(files) == 0 && p["Files"] != "*" {
				return nil, fmt.Errorf("the first Files paragraph is %q; want Files: * (later paragraphs override it)", p["Files"])
			}
			for _, n := range licenseNames(lic) {
				used[n] = true
			}
			files = append(files, p)
		default:
			name, body, _ := strings.Cut(lic, "\n")
			if strings.TrimSpace(body) == "" {
				return nil, fmt.Errorf("stand-alone License paragraph %s has no text", name)
			}
			texts[name] = true
		}
	}
	for n := range used {
		if !texts[n] {
			return nil, fmt.Errorf("license %s is used but has no stand-alone License paragraph", n)
		}
	}
	return files, nil
}

// TestCopyrightForm: the form checks on the shipped file, and on broken
// files that each must refuse.
func TestCopyrightForm(t *testing.T) {
	shipped, err := os.ReadFile(repoFile(t, "deploy/package/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	header := "Format: " + copyrightFormat + "\nUpstream-Name: x\n\n"
	expat := "License: Expat\n Permission is hereby granted.\n"
	tests := []struct {
		name, text, err string
	}{
		{"shipped", string(shipped), ""},
		{"no header", "Files: *\nCopyright: x\nLicense: Expat\n\n" + expat, "header"},
		{"files without copyright", header + "Files: *\nLicense: Expat\n\n" + expat, "Copyright and License are required"},
		{"first files not *", header + "Files: a/*\nCopyright: x\nLicense: Expat\n\n" + expat, "want Files: *"},
		{"license without text", header + "Files: *\nCopyright: x\nLicense: Expat\n\nLicense: Expat\n", "has no text"},
		{"license never given", header + "Files: *\nCopyright: x\nLicense: Expat and ISC\n\n" + expat, "ISC is used"},
		{"continuation first", header + " stray\n", "continuation"},
		{"field twice", header + "Files: *\nFiles: *\n", "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkCopyright(tt.text)
			if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

// TestCopyright checks the packaged copyright file against what the
// package really ships: it is /usr/share/doc/tokenproxy/copyright; every
// module linked into the packaged binary (go version -m) has its Files
// paragraph, with the version linked and the license its LICENSE file
// states; and no paragraph names a module that is no longer linked.
func TestCopyright(t *testing.T) {
	deb, _ := builtDeb(t)
	data := t.TempDir()
	mustRun(t, "", nil, tool(t, "dpkg-deb"), "-x", deb, data)
	installed := filepath.Join(data, "usr/share/doc/tokenproxy/copyright")
	sameFile(t, installed, repoFile(t, "deploy/package/copyright"))
	text, err := os.ReadFile(installed)
	if err != nil {
		t.Fatal(err)
	}
	files, err := checkCopyright(string(text))
	if err != nil {
		t.Fatal(err)
	}
	byFiles := map[string]paragraph{}
	for _, p := range files {
		byFiles[p["Files"]] = p
	}

	linked := linkedModules(t, filepath.Join(data, "usr/bin/tokenproxy"))
	seen := map[string]bool{}
	for _, m := range linked {
		key := "vendor/" + m.path + "/*"
		if m.replacedBy != "" {
			key = strings.TrimPrefix(m.replacedBy, "./") + "/*"
		}
		seen[key] = true
		p, ok := byFiles[key]
		if !ok {
			t.Errorf("%s %s is linked but has no Files: %s paragraph", m.path, m.version, key)
			continue
		}
		if want := m.path + " " + m.version; !strings.HasPrefix(p["Comment"], want) {
			t.Errorf("Files: %s: Comment %q, want it to start with %q (the version linked)", key, p["Comment"], want)
		}
		got := licenseNames(p["License"])
		want := moduleLicenses(t, m)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: License %v, but its LICENSE file says %v", m.path, got, want)
		}
	}
	for key := range byFiles {
		if strings.HasPrefix(key, "vendor/") && !seen[key] {
			t.Errorf("Files: %s names a module the binary does not link", key)
		}
	}
	if len(linked) < 20 {
		t.Errorf("only %d modules linked? go version -m output changed", len(linked))
	}
}

// module is one dependency line of `go version -m`.
type module struct {
	path, version string
	replacedBy    string // a local directory (=> ./third_party/...), or ""
}

// linkedModules reads the dependency lines of a Go binary's build info.
func linkedModules(t *testing.T, binary string) []module {
	t.Helper()
	out := mustRun(t, repoRoot(t), nil, "go", "version", "-m", binary)
	var mods []module
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "dep":
			mods = append(mods, module{path: f[1], version: f[2]})
		case len(f) >= 2 && f[0] == "=>" && len(mods) > 0:
			if strings.HasPrefix(f[1], ".") {
				mods[len(mods)-1].replacedBy = f[1]
			}
		}
	}
	return mods
}

// moduleLicenses classifies a module's LICENSE file (in the module cache,
// or the replacing directory) by the wording each license has.
func moduleLicenses(t *testing.T, m module) []string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), m.replacedBy)
	if m.replacedBy == "" {
		dir = strings.TrimSpace(mustRun(t, repoRoot(t), nil, "go", "list", "-m", "-f", "{{.Dir}}", m.path+"@"+m.version))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var text string
	for _, e := range entries {
		if n := strings.ToUpper(e.Name()); strings.HasPrefix(n, "LICENSE") || strings.HasPrefix(n, "LICENCE") || strings.HasPrefix(n, "COPYING") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			text += string(b)
		}
	}
	var lics []string
	for _, c := range []struct{ name, wording, also string }{
		{"Apache-2.0", "Apache License", "Version 2.0"},
		{"MPL-2.0", "Mozilla Public License", "2.0"},
		{"Expat", "Permission is hereby granted, free of charge", ""},
		{"BSD-3-clause", "Redistribution and use", "Neither the name"},
		{"ISC", "Permission to use, copy, modify, and", "distribute this software for any"},
	} {
		if strings.Contains(text, c.wording) && strings.Contains(text, c.also) {
			lics = append(lics, c.name)
		}
	}
	if len(lics) == 0 {
		t.Errorf("%s: no LICENSE file with a known license in %s", m.path, dir)
	}
	slices.Sort(lics)
	return lics
}
