package main

import (
	"bufio"
	"errors"
	"os"
	"strings"
)

// readLines returns the non-empty lines of a file, trimmed.
func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}

// readPassword returns the first line of a file.
func readPassword(path string) (string, error) {
	lines, err := readLines(path)
	if err != nil {
		return "", err
	}
	if len(lines) == 0 {
		return "", errors.New(path + ": empty")
	}
	return lines[0], nil
}
