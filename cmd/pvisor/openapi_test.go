package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pvisor/pvisor/hv/attest"
	"github.com/pvisor/pvisor/hv/lineage"
)

type openAPIDoc struct {
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]openAPISchema `json:"schemas"`
	} `json:"components"`
}

type openAPISchema struct {
	Properties map[string]json.RawMessage `json:"properties"`
	Required   []string                   `json:"required"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	b, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	return doc
}

// jsonFields are the JSON names of a struct's fields.
func jsonFields(v any) []string {
	var out []string
	rt := reflect.TypeOf(v)
	for i := 0; i < rt.NumField(); i++ {
		tag := rt.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIMatchesRoutes: docs/openapi.json lists exactly the routes
// the daemon serves, and each schema has exactly the fields of the Go
// type the handlers decode or encode.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	var documented []string
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(documented)
	served := append([]string(nil), apiRoutes...)
	sort.Strings(served)
	if d := cmp.Diff(served, documented); d != "" {
		t.Errorf("routes served (-) and documented (+):\n%s", d)
	}
	types := map[string]any{
		"Definition": Definition{}, "VM": apiVM{}, "Snapshot": snapshotInfo{}, "SnapshotRequest": snapshotRequest{},
		"RestoreRequest": restoreRequest{}, "MemoryRequest": memoryRequest{}, "SchedRequest": schedRequest{},
		"PatchLevelRequest": patchLevelRequest{}, "DeviceRequest": deviceRequest{}, "Event": lineage.Event{}, "Sample": vmSample{}, "GrantRequest": grantRequest{}, "AttestRequest": attestRequest{}, "Quote": attest.Quote{}, "MeasurementEvent": attest.Event{},
	}
	for name, v := range types {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is not documented", name)
			continue
		}
		var props []string
		for p := range s.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		if d := cmp.Diff(jsonFields(v), props); d != "" {
			t.Errorf("schema %s: Go fields (-) and documented properties (+):\n%s", name, d)
		}
	}
}

// TestAPIAnswersAsDocumented: against a live handler, every body-taking
// route refuses an unknown field with 400 and a message, and a created
// VM's reply has every required property and no undocumented one.
func TestAPIAnswersAsDocumented(t *testing.T) {
	doc := loadOpenAPI(t)
	state := t.TempDir()
	d, err := openDaemon(state, 1<<30, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer d.shutdown("test")
	srv := httptest.NewServer(d.handler())
	defer srv.Close()
	kernel := filepath.Join(state, "kernel")
	os.WriteFile(kernel, []byte("not a kernel"), 0o600)
	post := func(method, path, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	code, vm := post("POST", "/v1/vms", `{"name":"a","kernel":"`+kernel+`","owner":"x"}`)
	if code != 201 {
		t.Fatalf("create: %d %v", code, vm)
	}
	s := doc.Components.Schemas["VM"]
	for _, r := range s.Required {
		if _, ok := vm[r]; !ok {
			t.Errorf("the created VM lacks required property %q", r)
		}
	}
	for k := range vm {
		if _, ok := s.Properties[k]; !ok {
			t.Errorf("the created VM has undocumented property %q", k)
		}
	}
	for _, route := range apiRoutes {
		method, path, _ := strings.Cut(route, " ")
		if method != "POST" && method != "PUT" || strings.HasSuffix(path, "/start") || strings.HasSuffix(path, "/stop") ||
			strings.HasSuffix(path, "/pause") || strings.HasSuffix(path, "/resume") {
			continue
		}
		path = strings.ReplaceAll(path, "{name}", "a")
		code, m := post(method, path, `{"no_such_field":1}`)
		// A route on a stopped VM may answer 409 first; it must not take
		// the body.
		if code != 400 && code != 409 || m["error"] == nil || m["error"] == "" {
			t.Errorf("%s %s with an unknown field: %d %v", method, path, code, m)
		}
	}
	// The running VM's routes refuse a stopped VM with 409 and a message.
	for _, p := range []string{"/v1/vms/a/pause", "/v1/vms/a/stop"} {
		if code, m := post("POST", p, ""); code != 409 || m["error"] == nil {
			t.Errorf("POST %s on a stopped VM: %d %v", p, code, m)
		}
	}
}
