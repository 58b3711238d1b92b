// Renders every golden/cases/*.tpl with Go's text/template, delimiters [[ ]] and Sprig's
// TxtFuncMap (without env/expandenv), writing NAME.out or NAME.err next to it.
// Run: cd gotmpl/golden && go run . cases
// Data: NAME.json if present (integers become int, other numbers float64, like serde_json).
// Missing-key mode: a first line "[[/* missingkey=zero */]]" or "error" selects it.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

func convert(v interface{}) interface{} {
	switch x := v.(type) {
	case json.Number:
		s := x.String()
		if !strings.ContainsAny(s, ".eE") {
			if i, err := x.Int64(); err == nil {
				return int(i)
			}
		}
		f, _ := x.Float64()
		return f
	case map[string]interface{}:
		for k, e := range x {
			x[k] = convert(e)
		}
		return x
	case []interface{}:
		for i, e := range x {
			x[i] = convert(e)
		}
		return x
	}
	return v
}

func main() {
	dir := os.Args[1]
	files, _ := filepath.Glob(filepath.Join(dir, "*.tpl"))
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	for _, f := range files {
		base := strings.TrimSuffix(f, ".tpl")
		name := filepath.Base(base)
		text, err := os.ReadFile(f)
		if err != nil {
			panic(err)
		}
		var data interface{}
		if js, err := os.ReadFile(base + ".json"); err == nil {
			dec := json.NewDecoder(bytes.NewReader(js))
			dec.UseNumber()
			if err := dec.Decode(&data); err != nil {
				panic(fmt.Sprintf("%s: %v", f, err))
			}
			data = convert(data)
		}
		os.Remove(base + ".out")
		os.Remove(base + ".err")
		t := template.New(name).Delims("[[", "]]").Funcs(funcs)
		s := string(text)
		if strings.HasPrefix(s, "[[/* missingkey=zero */]]") {
			t.Option("missingkey=zero")
		} else if strings.HasPrefix(s, "[[/* missingkey=error */]]") {
			t.Option("missingkey=error")
		}
		var out bytes.Buffer
		_, err = t.Parse(s)
		if err == nil {
			err = t.Execute(&out, data)
		}
		if err != nil {
			os.WriteFile(base+".err", []byte(err.Error()+"\n"), 0o644)
		} else {
			os.WriteFile(base+".out", out.Bytes(), 0o644)
		}
	}
}
