package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// obj is one parsed YAML document or a node in it.
type obj = map[string]any

func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(obj)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string { s, _ := get(v, path...).(string); return s }

func k8sDocs(t *testing.T) []obj {
	t.Helper()
	data, err := os.ReadFile("../k8s/gemini-balance.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var docs []obj
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var d obj
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("deployments/k8s/gemini-balance.yaml does not parse: %v", err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

func find(docs []obj, kind, name string) obj {
	for _, d := range docs {
		if str(d, "kind") == kind && str(d, "metadata", "name") == name {
			return d
		}
	}
	return nil
}

// container is the first container of a workload's pod template.
func container(d obj) obj {
	c, _ := get(d, "spec", "template", "spec", "containers", 0).(obj)
	return c
}

// envOf tells where a container's env variable comes from: "secret:name/key",
// or its literal value.
func envOf(c obj, name string) string {
	l, _ := c["env"].([]any)
	for _, e := range l {
		if str(e, "name") != name {
			continue
		}
		if ref := get(e, "valueFrom", "secretKeyRef"); ref != nil {
			return "secret:" + str(ref, "name") + "/" + str(ref, "key")
		}
		return str(e, "value")
	}
	return ""
}

// appsOf lists the app labels a NetworkPolicy peer's podSelector admits.
func appsOf(sel any) []string {
	if app := str(sel, "matchLabels", "app"); app != "" {
		return []string{app}
	}
	var out []string
	l, _ := get(sel, "matchExpressions").([]any)
	for _, e := range l {
		if str(e, "key") == "app" && str(e, "operator") == "In" {
			vs, _ := get(e, "values").([]any)
			for _, v := range vs {
				out = append(out, v.(string))
			}
		}
	}
	slices.Sort(out)
	return out
}

// The Kubernetes manifest runs NATS with the per-service users of
// deployments/nats/nats.conf and MongoDB with a root user, takes every secret
// from Secrets the operator creates, and fences the pods with NetworkPolicies.
func TestK8sManifestAuthenticatesAndFencesEveryService(t *testing.T) {
	docs := k8sDocs(t)
	raw, _ := os.ReadFile("../k8s/gemini-balance.yaml")
	if strings.Contains(strings.ToLower(string(raw)), "change-me") {
		t.Error("the manifest ships a change-me value")
	}
	for _, d := range docs {
		if str(d, "kind") == "Secret" {
			t.Errorf("the manifest ships Secret %s: secrets are the operator's (README)", str(d, "metadata", "name"))
		}
	}

	conf, _ := os.ReadFile("../nats/nats.conf")
	if cm := find(docs, "ConfigMap", "gb-nats-config"); str(cm, "data", "nats.conf") != string(conf) {
		t.Error("ConfigMap gb-nats-config's nats.conf differs from deployments/nats/nats.conf")
	}
	nats := container(find(docs, "StatefulSet", "nats"))
	if args := get(nats, "args"); !slices.Equal(toStrings(args), []string{"-c", "/etc/nats/nats.conf"}) {
		t.Errorf("nats runs with %v, want the config file", args)
	}
	if str(nats, "envFrom", 0, "secretRef", "name") != "gb-nats" {
		t.Error("nats does not read its users' passwords from Secret gb-nats")
	}
	mongo := container(find(docs, "StatefulSet", "mongo"))
	if envOf(mongo, "MONGO_INITDB_ROOT_USERNAME") != "secret:gb-mongo/username" || envOf(mongo, "MONGO_INITDB_ROOT_PASSWORD") != "secret:gb-mongo/password" {
		t.Error("mongo has no root user from Secret gb-mongo")
	}

	owners := []string{"keyd", "logd", "admind"}
	for _, svc := range []string{"edge", "keyd", "logd", "admind", "schedulerd"} {
		c := container(find(docs, "Deployment", svc))
		if c == nil {
			t.Errorf("no Deployment %s", svc)
			continue
		}
		if envOf(c, "NATS_USER") != svc || envOf(c, "NATS_PASSWORD") != "secret:gb-nats/"+strings.ToUpper(svc)+"_NATS_PASSWORD" {
			t.Errorf("%s does not connect to NATS as its own user: %q %q", svc, envOf(c, "NATS_USER"), envOf(c, "NATS_PASSWORD"))
		}
		uri := envOf(c, "MONGO_URI")
		if slices.Contains(owners, svc) {
			if envOf(c, "MONGO_PASSWORD") != "secret:gb-mongo/password" || !strings.Contains(uri, "$(MONGO_PASSWORD)@mongo:27017") {
				t.Errorf("%s reaches MongoDB without the root credentials: %q", svc, uri)
			}
		} else if uri != "" || envOf(c, "MONGO_PASSWORD") != "" {
			t.Errorf("%s, which owns no collection, gets MongoDB credentials", svc)
		}
	}

	policies := map[string]obj{}
	for _, d := range docs {
		if str(d, "kind") == "NetworkPolicy" {
			policies[str(d, "metadata", "name")] = d
		}
	}
	deny := policies["default-deny-ingress"]
	if deny == nil || len(get(deny, "spec", "podSelector").(obj)) != 0 || get(deny, "spec", "ingress") != nil ||
		!slices.Contains(toStrings(get(deny, "spec", "policyTypes")), "Ingress") {
		t.Fatal("no default-deny ingress NetworkPolicy for every pod")
	}
	// Who may reach each target, by the policies that select it.
	reach := func(target string) (apps []string, namespaces []string) {
		for _, p := range policies {
			if !slices.Contains(appsOf(get(p, "spec", "podSelector")), target) {
				continue
			}
			rules, _ := get(p, "spec", "ingress").([]any)
			for _, r := range rules {
				from, _ := get(r, "from").([]any)
				for _, f := range from {
					if ps := get(f, "podSelector"); ps != nil {
						apps = append(apps, appsOf(ps)...)
					}
					if ns := get(f, "namespaceSelector"); ns != nil {
						namespaces = append(namespaces, str(ns, "matchLabels", "kubernetes.io/metadata.name"))
					}
				}
			}
		}
		slices.Sort(apps)
		return apps, namespaces
	}
	if apps, ns := reach("nats"); !slices.Equal(apps, []string{"admind", "edge", "keyd", "logd", "schedulerd"}) || len(ns) != 0 {
		t.Errorf("NATS reachable from %v and namespaces %v, want the five services only", apps, ns)
	}
	if apps, ns := reach("mongo"); !slices.Equal(apps, []string{"admind", "keyd", "logd"}) || len(ns) != 0 {
		t.Errorf("MongoDB reachable from %v and namespaces %v, want keyd, logd and admind only", apps, ns)
	}
	if apps, ns := reach("edge"); len(apps) != 0 || !slices.Equal(ns, []string{"ingress-nginx"}) {
		t.Errorf("edge reachable from %v and namespaces %v, want the ingress controller only", apps, ns)
	}
	for _, svc := range []string{"keyd", "logd", "schedulerd"} {
		if apps, ns := reach(svc); len(apps)+len(ns) != 0 {
			t.Errorf("%s, which serves nothing but NATS, is reachable from %v %v", svc, apps, ns)
		}
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// docker-compose.yml has no default secret: every password comes from .env
// (compose refuses to start without it), and MongoDB has a root user.
func TestComposeShipsNoDefaultPasswords(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc obj
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	if m := regexp.MustCompile(`\$\{[A-Z_]*(PASSWORD|TOKEN|KEY|USER)[A-Z_]*:-[^}]+\}`).FindString(string(raw)); m != "" {
		t.Errorf("docker-compose.yml has a default secret: %s", m)
	}
	if strings.Contains(string(raw), "change-") {
		t.Error("docker-compose.yml ships a change-… placeholder")
	}
	for _, svc := range []string{"edge", "keyd", "logd", "admind", "schedulerd"} {
		pw := str(doc, "services", svc, "environment", "NATS_PASSWORD")
		if !strings.HasPrefix(pw, "${"+strings.ToUpper(svc)+"_NATS_PASSWORD:?") {
			t.Errorf("%s's NATS password %q is not required from .env", svc, pw)
		}
	}
	if pw := str(doc, "services", "mongo", "environment", "MONGO_INITDB_ROOT_PASSWORD"); !strings.HasPrefix(pw, "${MONGO_ROOT_PASSWORD:?") {
		t.Errorf("mongo root password %q is not required from .env", pw)
	}
	if uri := str(doc, "services", "keyd", "environment", "MONGO_URI"); !strings.Contains(uri, "MONGO_ROOT_PASSWORD") {
		t.Errorf("keyd's MONGO_URI %q has no credentials", uri)
	}
}
