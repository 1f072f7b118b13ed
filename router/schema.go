package router

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// checkShape walks a YAML document against the raw config types and reports
// every key they do not know, and every value of the wrong kind (a list
// where a mapping belongs, say), by file, line and path, as the builder
// reports every other mistake. yaml.v3's own KnownFields error names a Go
// type instead of the place in the file.
func checkShape(file string, doc *yaml.Node) []*FieldError {
	var errs []*FieldError
	var walk func(n *yaml.Node, t reflect.Type, path string)
	walk = func(n *yaml.Node, t reflect.Type, path string) {
		if n.Kind == yaml.DocumentNode {
			for _, c := range n.Content {
				walk(c, t, path)
			}
			return
		}
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if n.Kind == yaml.AliasNode || missing(n) || t == reflect.TypeFor[yaml.Node]() {
			return // aliases are checked where they point; scalars by the builder
		}
		fail := func(line int, field, format string, args ...any) {
			if field == "" {
				field = "(top level)"
			}
			errs = append(errs, &FieldError{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
		}
		switch t.Kind() {
		case reflect.Slice:
			if n.Kind != yaml.SequenceNode {
				fail(n.Line, path, "must be a list")
				return
			}
			for i, c := range n.Content {
				walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		case reflect.Struct:
			if n.Kind != yaml.MappingNode {
				fail(n.Line, path, "must be a mapping of keys to values")
				return
			}
			keys := yamlKeys(t)
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				sub := k.Value
				if path != "" {
					sub = path + "." + k.Value
				}
				ft, ok := keys[k.Value]
				if !ok {
					if k.Value == "<<" {
						continue // a merge key: yaml.v3 checks what it merges
					}
					fail(k.Line, sub, "unknown key (known here: %s)", strings.Join(sortedKeys(keys), ", "))
					continue
				}
				walk(v, ft, sub)
			}
		}
	}
	walk(doc, reflect.TypeFor[rawConfig](), "")
	return errs
}

// yamlKeys maps the YAML keys of struct type t, inlined structs included,
// to their field types.
func yamlKeys(t reflect.Type) map[string]reflect.Type {
	keys := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
		case opts == "inline":
			for k, ft := range yamlKeys(f.Type) {
				keys[k] = ft
			}
		case name != "":
			keys[name] = f.Type
		case f.IsExported():
			keys[strings.ToLower(f.Name)] = f.Type
		}
	}
	return keys
}

func sortedKeys(m map[string]reflect.Type) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
