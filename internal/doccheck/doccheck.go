// Package doccheck finds pointers in the repository that lead nowhere: a
// relative link of a Markdown file whose target does not exist, or a `.md`
// file named in a Markdown file or in a comment of a Go or shell file that
// does not exist. Its test runs it over the repository (make test).
package doccheck

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Broken is one pointer that leads nowhere.
type Broken struct {
	File   string // slash path from the root
	Line   int
	Target string
}

func (b Broken) String() string {
	return fmt.Sprintf("%s:%d: %s does not exist", b.File, b.Line, b.Target)
}

var (
	// [text](target) and [text]: target
	mdLink   = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)|^\s*\[[^\]]+\]:\s*(\S+)`)
	codeSpan = regexp.MustCompile("`[^`]*`")
	// a .md file name, with the folders before it
	mdName = regexp.MustCompile(`(?:\.{1,2}/|[\w.-]+/)*[\w.-]*[A-Za-z0-9_-]\.md\b`)
	// what can be left out of a scan: build output and tool caches
	skipDirs = map[string]bool{".git": true, "bin": true, "node_modules": true, "vendor": true}
)

// Check walks root and returns every broken pointer, in file order.
func Check(root string) ([]Broken, error) {
	var out []Broken
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && (skipDirs[d.Name()] || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		var bs []Broken
		switch {
		case strings.HasSuffix(p, ".md"):
			bs, err = scan(root, rel, markdownTargets)
		case strings.HasSuffix(p, ".go"):
			bs, err = goComments(root, rel)
		case strings.HasSuffix(p, ".sh"), d.Name() == "Makefile":
			bs, err = scan(root, rel, shellComment)
		}
		out = append(out, bs...)
		return err
	})
	return out, err
}

func scan(root, rel string, targets func(string) []string) ([]Broken, error) {
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Broken
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	fence := false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.HasSuffix(rel, ".md") && strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence // code blocks show commands and output, not pointers
			continue
		}
		if fence {
			continue
		}
		for _, t := range targets(line) {
			if !exists(root, rel, t) {
				out = append(out, Broken{File: rel, Line: n, Target: t})
			}
		}
	}
	return out, sc.Err()
}

// markdownTargets are the relative link targets of a Markdown line (without
// their #fragment) and the .md files it names.
func markdownTargets(line string) []string {
	var out []string
	// Link syntax inside `code` is not a link (regular expressions in docs/reference.md).
	for _, m := range mdLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, "``"), -1) {
		t := m[1] + m[2]
		if i := strings.IndexByte(t, '#'); i >= 0 {
			t = t[:i]
		}
		if t == "" || strings.Contains(t, "://") || strings.HasPrefix(t, "mailto:") || strings.HasPrefix(t, "<") {
			continue
		}
		out = append(out, t)
	}
	// Names outside links, in text or `code`.
	return append(out, names(mdLink.ReplaceAllString(line, ""))...)
}

// shellComment returns the .md files named in the comment of a shell line.
func shellComment(line string) []string {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "#") {
		if i := strings.Index(line, " #"); i >= 0 {
			t = line[i+1:]
		} else {
			return nil
		}
	}
	return names(t)
}

// goComments checks the .md files named in the comments of a Go file.
func goComments(root, rel string) ([]Broken, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(root, filepath.FromSlash(rel)), nil, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("reading the comments of %s: %w", rel, err)
	}
	var out []Broken
	for _, g := range f.Comments {
		for _, c := range g.List {
			for i, line := range strings.Split(c.Text, "\n") {
				for _, t := range names(line) {
					if !exists(root, rel, t) {
						out = append(out, Broken{File: rel, Line: fset.Position(c.Slash).Line + i, Target: t})
					}
				}
			}
		}
	}
	return out, nil
}

// names are the .md files a piece of text names, except inside URLs.
func names(text string) []string {
	var out []string
	for _, m := range mdName.FindAllStringIndex(text, -1) {
		if !insideURL(text, m[0]) {
			out = append(out, text[m[0]:m[1]])
		}
	}
	return out
}

func insideURL(s string, at int) bool {
	start := strings.LastIndexAny(s[:at], " \t(`'\"<") + 1
	return strings.Contains(s[start:at], "://")
}

// exists resolves target from the folder of the file naming it, then from
// the root (comments and docs name files both ways).
func exists(root, from, target string) bool {
	for _, p := range []string{path.Join(path.Dir(from), target), path.Clean(target)} {
		if strings.HasPrefix(p, "../") {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(p))); err == nil {
			return true
		}
	}
	return false
}
