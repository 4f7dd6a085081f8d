package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/conf"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const k8sDir = "../k8s"

// objects is one built overlay, every object decoded into its API type.
type objects struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pdbs        map[string]*policyv1.PodDisruptionBudget
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	policies    map[string]*networkingv1.NetworkPolicy
	ingresses   map[string]*networkingv1.Ingress
	namespaces  []string
	raw         string
}

// overlays lists deployments/k8s/overlays/*.
func overlays(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(k8sDir, "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) < 2 {
		t.Fatalf("overlays %v, want at least single and ha", out)
	}
	return out
}

// strict decodes JSON into v, refusing fields the API type does not have.
func strict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// build runs kustomize on an overlay, as `kubectl apply -k` does, and
// decodes every object strictly into its Kubernetes API type.
func build(t *testing.T, overlay string) *objects {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(k8sDir, "overlays", overlay))
	if err != nil {
		t.Fatalf("kustomize build overlays/%s: %v", overlay, err)
	}
	o := &objects{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, policies: map[string]*networkingv1.NetworkPolicy{},
		ingresses: map[string]*networkingv1.Ingress{}}
	yml, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	o.raw = string(yml)
	for _, r := range m.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		gvk := r.GetGvk()
		kind, name := gvk.ApiVersion()+"/"+gvk.Kind, r.GetName()
		var (
			obj  any
			keep func()
		)
		switch kind {
		case "v1/Namespace":
			v := &corev1.Namespace{}
			obj, keep = v, func() { o.namespaces = append(o.namespaces, name) }
		case "v1/ConfigMap":
			v := &corev1.ConfigMap{}
			obj, keep = v, func() { o.configMaps[name] = v }
		case "v1/Service":
			v := &corev1.Service{}
			obj, keep = v, func() { o.services[name] = v }
		case "apps/v1/Deployment":
			v := &appsv1.Deployment{}
			obj, keep = v, func() { o.deployments[name] = v }
		case "policy/v1/PodDisruptionBudget":
			v := &policyv1.PodDisruptionBudget{}
			obj, keep = v, func() { o.pdbs[name] = v }
		case "autoscaling/v2/HorizontalPodAutoscaler":
			v := &autoscalingv2.HorizontalPodAutoscaler{}
			obj, keep = v, func() { o.hpas[name] = v }
		case "networking.k8s.io/v1/NetworkPolicy":
			v := &networkingv1.NetworkPolicy{}
			obj, keep = v, func() { o.policies[name] = v }
		case "networking.k8s.io/v1/Ingress":
			v := &networkingv1.Ingress{}
			obj, keep = v, func() { o.ingresses[name] = v }
		default:
			t.Errorf("overlays/%s: %s %s: a kind this test does not know (Secrets are the operator's)", overlay, kind, name)
			continue
		}
		if err := strict(data, obj); err != nil {
			t.Errorf("overlays/%s: %s %s does not decode strictly: %v", overlay, kind, name, err)
			continue
		}
		if ns := r.GetNamespace(); ns != "gemini-balance" && kind != "v1/Namespace" {
			t.Errorf("overlays/%s: %s %s in namespace %q", overlay, kind, name, ns)
		}
		keep()
	}
	return o
}

func envOf(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name != name {
			continue
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			return "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
		return e.Value
	}
	return ""
}

func selects(sel *metav1.LabelSelector, labels map[string]string) bool {
	if sel == nil {
		return false
	}
	for k, v := range sel.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	for _, e := range sel.MatchExpressions {
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			if !slices.Contains(e.Values, labels[e.Key]) {
				return false
			}
		case metav1.LabelSelectorOpExists:
			if _, ok := labels[e.Key]; !ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// Labels of the pods the Helm charts run (helm/*-values.yaml).
var (
	natsPod  = map[string]string{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "nats"}
	mongoPod = map[string]string{"app": "gb-mongo-svc"}
)

// mongoSecret is the Secret the MongoDB operator writes for the user of
// helm/mongodb-values.yaml: <resource>-<db>-<user>.
func mongoSecret(t *testing.T) string {
	t.Helper()
	v := helmValues(t, "mongodb-values.yaml")
	res, _ := v["resource"].(map[string]any)
	users, _ := res["users"].([]any)
	if len(users) != 1 {
		t.Fatalf("mongodb-values.yaml has users %v, want one", users)
	}
	u, _ := users[0].(map[string]any)
	return fmt.Sprintf("%s-%s-%s", res["name"], u["db"], u["name"])
}

// Every overlay builds, and every object is a valid Kubernetes object: the
// five services with probes, resource requests, a non-root user, their own
// NATS user and (for owners only) MongoDB, a PDB each, an HPA for edge, and
// NetworkPolicies that let each pod be reached only by what needs it.
func TestK8sOverlaysBuildIntoValidFencedWorkloads(t *testing.T) {
	secret := mongoSecret(t)
	for _, overlay := range overlays(t) {
		t.Run(overlay, func(t *testing.T) {
			o := build(t, overlay)
			if strings.Contains(strings.ToLower(o.raw), "change-me") {
				t.Error("ships a change-me value")
			}
			if !slices.Equal(o.namespaces, []string{"gemini-balance"}) {
				t.Errorf("namespaces %v", o.namespaces)
			}
			for _, svc := range apps {
				d := o.deployments[svc]
				if d == nil {
					t.Errorf("no Deployment %s", svc)
					continue
				}
				spec := d.Spec.Template.Spec
				if len(spec.Containers) != 1 {
					t.Fatalf("%s: %d containers", svc, len(spec.Containers))
				}
				c := spec.Containers[0]
				if c.Image != "gemini-balance/"+svc {
					t.Errorf("%s runs image %s", svc, c.Image)
				}
				for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
					if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.IntValue() != 8000 || (p.HTTPGet.Path != "/readyz" && p.HTTPGet.Path != "/healthz") {
						t.Errorf("%s has no %s probe on /readyz or /healthz :8000", svc, name)
					}
				}
				if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
					t.Errorf("%s readiness on %s, want /readyz (NATS and MongoDB reachable)", svc, c.ReadinessProbe.HTTPGet.Path)
				}
				if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
					t.Errorf("%s has no cpu and memory requests", svc)
				}
				if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
					t.Errorf("%s may run as root", svc)
				}
				if envOf(c, "NATS_USER") != svc || envOf(c, "NATS_PASSWORD") != "secret:gb-nats/"+strings.ToUpper(svc)+"_NATS_PASSWORD" {
					t.Errorf("%s does not connect to NATS as its own user: %q %q", svc, envOf(c, "NATS_USER"), envOf(c, "NATS_PASSWORD"))
				}
				uri := envOf(c, "MONGO_URI")
				if owns := svc == "keyd" || svc == "logd" || svc == "admind"; owns && uri != "secret:"+secret+"/connectionString.standard" {
					t.Errorf("%s MONGO_URI %q, want the operator's connection string in Secret %s", svc, uri, secret)
				} else if !owns && uri != "" {
					t.Errorf("%s, which owns no collection, gets MongoDB credentials", svc)
				}
				var refs []string
				for _, e := range c.EnvFrom {
					switch {
					case e.ConfigMapRef != nil:
						refs = append(refs, "cm:"+e.ConfigMapRef.Name)
					case e.SecretRef != nil:
						refs = append(refs, "secret:"+e.SecretRef.Name)
					}
				}
				if !slices.Equal(refs, []string{"cm:gb-config", "secret:gb-secrets"}) {
					t.Errorf("%s reads %v, want gb-config and gb-secrets", svc, refs)
				}
				pdb := o.pdbs[svc]
				if pdb == nil || !selects(pdb.Spec.Selector, d.Spec.Template.Labels) {
					t.Errorf("%s has no PodDisruptionBudget", svc)
				}
			}
			if _, ok := o.configMaps["gb-config"]; !ok {
				t.Fatal("no ConfigMap gb-config")
			}
			hpa := o.hpas["edge"]
			if hpa == nil || hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != "edge" ||
				hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas <= *hpa.Spec.MinReplicas {
				t.Errorf("no HPA scaling edge from 2 replicas up: %+v", hpa)
			}
			if len(o.hpas) != 1 {
				t.Errorf("%d HPAs; only edge is stateless", len(o.hpas))
			}
			for _, name := range []string{"edge", "admind"} {
				s := o.services[name]
				if s == nil || o.deployments[name] == nil || !selects(&metav1.LabelSelector{MatchLabels: s.Spec.Selector}, o.deployments[name].Spec.Template.Labels) {
					t.Errorf("no Service for %s", name)
				}
			}
			checkPolicies(t, o)
		})
	}
}

// checkPolicies: default deny; who reaches each pod, by the policies that
// select it.
func checkPolicies(t *testing.T, o *objects) {
	t.Helper()
	deny := o.policies["default-deny-ingress"]
	if deny == nil || len(deny.Spec.PodSelector.MatchLabels)+len(deny.Spec.PodSelector.MatchExpressions) != 0 ||
		len(deny.Spec.Ingress) != 0 || !slices.Contains(deny.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Fatal("no default-deny ingress NetworkPolicy for every pod")
	}
	pods := map[string]map[string]string{"nats": natsPod, "mongo": mongoPod}
	for _, svc := range apps {
		if d := o.deployments[svc]; d != nil {
			pods[svc] = d.Spec.Template.Labels
		}
	}
	// reach lists who may reach target: pod names and namespaces, with ports.
	reach := func(target string) []string {
		var out []string
		for _, p := range o.policies {
			if !selects(&p.Spec.PodSelector, pods[target]) {
				continue
			}
			for _, rule := range p.Spec.Ingress {
				var ports []string
				for _, port := range rule.Ports {
					ports = append(ports, port.Port.String())
				}
				for _, f := range rule.From {
					if f.PodSelector != nil && f.NamespaceSelector == nil {
						for name, labels := range pods {
							if selects(f.PodSelector, labels) {
								out = append(out, name+":"+strings.Join(ports, ","))
							}
						}
					}
					if f.NamespaceSelector != nil {
						out = append(out, "ns/"+f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]+":"+strings.Join(ports, ","))
					}
					if f.IPBlock != nil {
						out = append(out, "ip/"+f.IPBlock.CIDR)
					}
				}
			}
		}
		sort.Strings(out)
		return out
	}
	want := map[string][]string{
		"nats":       {"admind:4222", "edge:4222", "keyd:4222", "logd:4222", "nats:6222", "schedulerd:4222"},
		"mongo":      {"admind:27017", "keyd:27017", "logd:27017", "mongo:27017"},
		"edge":       {"ns/ingress-nginx:8000"},
		"admind":     {"ns/ingress-nginx:8000"},
		"keyd":       nil,
		"logd":       nil,
		"schedulerd": nil,
	}
	for target, w := range want {
		if got := reach(target); !slices.Equal(got, w) {
			t.Errorf("%s reachable from %v, want %v", target, got, w)
		}
	}
}

// overlays/ha: every NATS node listed, R3 streams and buckets, two or more
// of every service, spread over nodes; overlays/single: R1.
func TestK8sHAOverlayClustersEverything(t *testing.T) {
	ha := build(t, "ha")
	cfg := ha.configMaps["gb-config"].Data
	if urls := strings.Split(cfg["NATS_URL"], ","); len(urls) != 3 {
		t.Errorf("ha NATS_URL %q, want the 3 nodes", cfg["NATS_URL"])
	} else {
		for i, u := range urls {
			if u != fmt.Sprintf("nats://nats-%d.nats-headless:4222", i) {
				t.Errorf("ha NATS_URL entry %q is not node %d of the Helm release", u, i)
			}
		}
	}
	if cfg["JETSTREAM_REPLICAS"] != "3" {
		t.Errorf("ha JETSTREAM_REPLICAS %q, want 3", cfg["JETSTREAM_REPLICAS"])
	}
	for _, svc := range apps {
		d := ha.deployments[svc]
		if d == nil {
			t.Fatalf("ha: no Deployment %s", svc)
		}
		if svc != "edge" && (d.Spec.Replicas == nil || *d.Spec.Replicas < 2) {
			t.Errorf("ha %s runs %v replicas, want 2 or more", svc, d.Spec.Replicas)
		}
		tsc := d.Spec.Template.Spec.TopologySpreadConstraints
		if len(tsc) != 1 || tsc[0].TopologyKey != "kubernetes.io/hostname" || !slices.Contains(tsc[0].MatchLabelKeys, "app") {
			t.Errorf("ha %s replicas are not spread over nodes: %+v", svc, tsc)
		}
		if pdb := ha.pdbs[svc]; pdb == nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("ha %s PDB allows %v down", svc, pdb.Spec.MaxUnavailable)
		}
	}
	if m := ha.hpas["edge"].Spec.MinReplicas; m == nil || *m < 3 {
		t.Errorf("ha edge HPA min %v, want 3", m)
	}
	single := build(t, "single")
	if r := single.configMaps["gb-config"].Data["JETSTREAM_REPLICAS"]; r != "1" {
		t.Errorf("single JETSTREAM_REPLICAS %q, want 1 (one NATS node)", r)
	}
	if u := single.configMaps["gb-config"].Data["NATS_URL"]; u != "nats://nats:4222" {
		t.Errorf("single NATS_URL %q, want the Helm release's service", u)
	}
}

func helmValues(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(k8sDir, "helm", name))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(raw, &v); err != nil {
		t.Fatalf("helm/%s: %v", name, err)
	}
	return v
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

// The Helm values: NATS runs deployments/nats/nats.conf's users and
// permissions exactly, with passwords from Secret gb-nats, JetStream on and,
// for HA, a 3-node cluster; MongoDB is a replica set of 1 or 3 members whose
// names match what the manifests select and read.
func TestHelmValuesMatchTheDeployment(t *testing.T) {
	users := []string{"EDGE", "KEYD", "LOGD", "ADMIND", "SCHEDULERD", "TAP"}
	for _, u := range users {
		t.Setenv(u+"_NATS_PASSWORD", "PW_"+u)
	}
	raw, err := os.ReadFile("../nats/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	natsConf, err := conf.Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(natsConf["authorization"])
	want = bytes.ReplaceAll(want, []byte(`"PW_`), []byte(`"<< $`))
	for _, u := range users {
		want = bytes.ReplaceAll(want, []byte(`"<< $`+u+`"`), []byte(`"<< $`+u+`_NATS_PASSWORD >>"`))
	}
	nv := helmValues(t, "nats-values.yaml")
	got, _ := json.Marshal(dig(nv, "config", "merge", "authorization"))
	var w, g any
	_ = json.Unmarshal(want, &w)
	_ = json.Unmarshal(got, &g)
	wj, _ := json.Marshal(w)
	gj, _ := json.Marshal(g)
	if !bytes.Equal(wj, gj) {
		t.Errorf("helm/nats-values.yaml's authorization differs from deployments/nats/nats.conf's:\n got %s\nwant %s", gj, wj)
	}
	for _, u := range users {
		ref := dig(nv, "container", "env", u+"_NATS_PASSWORD", "valueFrom", "secretKeyRef")
		if dig(ref, "name") != "gb-nats" || dig(ref, "key") != u+"_NATS_PASSWORD" {
			t.Errorf("NATS does not read %s_NATS_PASSWORD from Secret gb-nats: %v", u, ref)
		}
	}
	if dig(nv, "config", "jetstream", "enabled") != true {
		t.Error("NATS values: JetStream off")
	}
	nha := helmValues(t, "nats-values-ha.yaml")
	if dig(nha, "config", "cluster", "enabled") != true || dig(nha, "config", "cluster", "replicas") != float64(3) {
		t.Errorf("NATS HA values: cluster %v, want 3 nodes", dig(nha, "config", "cluster"))
	}

	mv := helmValues(t, "mongodb-values.yaml")
	if dig(mv, "createResource") != true || dig(mv, "resource", "name") != "gb-mongo" || dig(mv, "resource", "members") != float64(1) {
		t.Errorf("MongoDB values: %v, want the replica set gb-mongo created with 1 member", dig(mv, "resource"))
	}
	if mongoPod["app"] != fmt.Sprint(dig(mv, "resource", "name"))+"-svc" {
		t.Error("the NetworkPolicies select MongoDB pods by another name than the operator gives them")
	}
	if m := dig(helmValues(t, "mongodb-values-ha.yaml"), "resource", "members"); m != float64(3) {
		t.Errorf("MongoDB HA values: %v members, want 3", m)
	}
}
