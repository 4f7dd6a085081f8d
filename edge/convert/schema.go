package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Drop records something a client sent that Gemini cannot take and the
// conversion left out. Handlers log and count drops; they never fail on one.
type Drop struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// schemaKeep are the JSON Schema keywords Gemini's parametersJsonSchema and
// responseJsonSchema take, copied through unchanged.
var schemaKeep = map[string]bool{
	"type": true, "format": true, "title": true, "description": true, "enum": true,
	"required": true, "minItems": true, "maxItems": true, "minimum": true, "maximum": true,
	"minLength": true, "maxLength": true, "pattern": true, "minProperties": true,
	"maxProperties": true, "default": true, "nullable": true, "propertyOrdering": true,
	"$id": true, "$anchor": true,
}

// reduceSchema rewrites a JSON Schema to the subset Gemini accepts, keeping
// key order (Gemini orders structured output by it). Unsupported keywords are
// dropped and reported with their path; `const` becomes a one-value enum,
// `oneOf` becomes `anyOf`, `definitions` becomes `$defs`.
func reduceSchema(raw json.RawMessage, path string, drops *[]Drop) (json.RawMessage, error) {
	out, err := reduceNode(nil, raw, path, drops, 0)
	if err != nil {
		return nil, err
	}
	return out, nil
}

const maxSchemaDepth = 64

func reduceNode(dst []byte, raw json.RawMessage, path string, drops *[]Drop, depth int) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fieldErr(path, "want a JSON Schema object")
	}
	if raw[0] == 't' || raw[0] == 'f' { // boolean schema
		return append(dst, raw...), nil
	}
	if raw[0] != '{' {
		return nil, fieldErr(path, "want a JSON Schema object")
	}
	if depth > maxSchemaDepth {
		return nil, fieldErr(path, "schema nested deeper than %d levels", maxSchemaDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, fieldErr(path, "invalid JSON Schema: %v", err)
	}
	hasEnum, hasAnyOf := bytes.Contains(raw, []byte(`"enum"`)), bytes.Contains(raw, []byte(`"anyOf"`))
	dst = append(dst, '{')
	first := true
	key := func(k string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, k)
		dst = append(dst, ':')
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fieldErr(path, "invalid JSON Schema: %v", err)
		}
		k, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fieldErr(path, "invalid JSON Schema: %v", err)
		}
		sub := path + "." + k
		switch k {
		case "$ref":
			var ref string
			if json.Unmarshal(val, &ref) != nil {
				return nil, fieldErr(sub, "want a string")
			}
			key(k)
			dst = appendString(dst, strings.Replace(ref, "#/definitions/", "#/$defs/", 1))
		case "properties", "$defs", "definitions":
			if k == "definitions" {
				k = "$defs"
			}
			key(k)
			if dst, err = reduceMap(dst, val, sub, drops, depth); err != nil {
				return nil, err
			}
		case "items", "additionalProperties", "not":
			if k == "not" {
				*drops = append(*drops, Drop{sub, "Gemini schemas have no not"})
				continue
			}
			key(k)
			if dst, err = reduceNode(dst, val, sub, drops, depth+1); err != nil {
				return nil, err
			}
		case "anyOf", "oneOf", "prefixItems":
			if k == "oneOf" {
				if hasAnyOf {
					*drops = append(*drops, Drop{sub, "oneOf next to anyOf"})
					continue
				}
				k = "anyOf" // Gemini reads oneOf as anyOf anyway
			}
			key(k)
			if dst, err = reduceList(dst, val, sub, drops, depth); err != nil {
				return nil, err
			}
		case "const":
			if hasEnum {
				*drops = append(*drops, Drop{sub, "const next to enum"})
				continue
			}
			key("enum")
			dst = append(dst, '[')
			dst = append(dst, val...)
			dst = append(dst, ']')
		default:
			if !schemaKeep[k] {
				*drops = append(*drops, Drop{sub, "unsupported JSON Schema keyword"})
				continue
			}
			key(k)
			dst = append(dst, val...)
		}
	}
	return append(dst, '}'), nil
}

func reduceMap(dst []byte, raw json.RawMessage, path string, drops *[]Drop, depth int) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fieldErr(path, "want an object of schemas")
	}
	dst = append(dst, '{')
	for n := 0; dec.More(); n++ {
		tok, err := dec.Token()
		if err != nil {
			return nil, fieldErr(path, "invalid JSON: %v", err)
		}
		name, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fieldErr(path, "invalid JSON: %v", err)
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, name)
		dst = append(dst, ':')
		if dst, err = reduceNode(dst, val, path+"."+name, drops, depth+1); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

func reduceList(dst []byte, raw json.RawMessage, path string, drops *[]Drop, depth int) ([]byte, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fieldErr(path, "want an array of schemas")
	}
	dst = append(dst, '[')
	for i, item := range list {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = reduceNode(dst, item, fmt.Sprintf("%s[%d]", path, i), drops, depth+1); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

// emptyObjectSchema reports a schema that declares no parameters at all.
func emptyObjectSchema(raw json.RawMessage) bool {
	var s struct {
		Type       any             `json:"type"`
		Properties map[string]any  `json:"properties"`
		Rest       json.RawMessage `json:"-"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&s); err != nil && err != io.EOF {
		return false
	}
	return s.Type == "object" && len(s.Properties) == 0 && !bytes.Contains(raw, []byte(`"anyOf"`)) && !bytes.Contains(raw, []byte(`"additionalProperties"`))
}
