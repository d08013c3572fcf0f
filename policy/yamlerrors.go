package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlTypeMessage is one message of a *yaml.TypeError: "line 12: field
// max_msg_size not found in type policy.Inbound", or "line 7: cannot
// unmarshal !!str `abc` into int".
var (
	yamlTypeMessage = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlUnknown     = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// decodeError turns a decoding error into errors that name the YAML path
// of each bad field (inbound.max_msg_size: unknown field (line 12))
// instead of the Go type the decoder speaks of, which a user never wrote.
// Errors it cannot place keep the decoder's text under "(file)".
func decodeError(err error, data []byte, source string) error {
	fileErr := &FieldError{Source: source, Field: "(file)", Reason: strings.TrimPrefix(err.Error(), "yaml: ")}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fileErr
	}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return fileErr
	}
	keys := yamlKeys(&root, "", nil)
	var errs []error
	for _, msg := range te.Errors {
		errs = append(errs, placeTypeMessage(msg, keys, source))
	}
	return errors.Join(errs...)
}

// yamlKey is one mapping key of the document with its path.
type yamlKey struct {
	path      string // inbound.max_msg_size, mailboxes[0].public
	name      string // max_msg_size
	line      int    // the key's line
	valueLine int    // the line its value starts on
	scalar    string // its value, when a scalar
}

// yamlKeys lists the mapping keys under n in document order.
func yamlKeys(n *yaml.Node, prefix string, keys []yamlKey) []yamlKey {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			keys = yamlKeys(c, prefix, keys)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			key := yamlKey{path: path, name: k.Value, line: k.Line, valueLine: v.Line}
			if v.Kind == yaml.ScalarNode {
				key.scalar = v.Value
			}
			keys = append(keys, key)
			keys = yamlKeys(v, path, keys)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			keys = yamlKeys(c, fmt.Sprintf("%s[%d]", prefix, i), keys)
		}
	}
	return keys
}

// placeTypeMessage finds the key a decoder message is about by its line:
// an unknown field by its key, a bad value by the key it belongs to (the
// deepest one whose value starts on that line; of several on one line,
// as in a flow mapping, the one whose value the message quotes).
func placeTypeMessage(msg string, keys []yamlKey, source string) error {
	m := yamlTypeMessage.FindStringSubmatch(msg)
	if m == nil {
		return &FieldError{Source: source, Field: "(file)", Reason: msg}
	}
	line, _ := strconv.Atoi(m[1])
	if u := yamlUnknown.FindStringSubmatch(m[2]); u != nil {
		for _, k := range keys {
			if k.line == line && k.name == u[1] {
				return &FieldError{Source: source, Field: k.path, Reason: fmt.Sprintf("unknown field (line %d)", line)}
			}
		}
	}
	var found *yamlKey
	for i := range keys {
		k := &keys[i]
		if k.valueLine != line {
			continue
		}
		quoted := k.scalar != "" && strings.Contains(m[2], "`"+k.scalar+"`")
		if found == nil || quoted || !strings.Contains(m[2], "`"+found.scalar+"`") {
			found = k
		}
	}
	if found == nil {
		return &FieldError{Source: source, Field: "(file)", Reason: msg}
	}
	return &FieldError{Source: source, Field: found.path, Reason: fmt.Sprintf("%s (line %d)", m[2], line)}
}
