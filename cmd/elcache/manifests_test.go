package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// The Kubernetes manifests of deploy/kubernetes are decoded strictly into
// the API types and checked against each other and against the server's
// settings. TestManifestChecksCatch breaks them on purpose, one check at a
// time, and expects each break to be reported.

const manifestDir = "../../deploy/kubernetes"

// Names the manifests must agree on.
const (
	manifestStatefulSet = "elcache"
	manifestHeadless    = "elcache-peers"
	manifestReplicas    = 3
	manifestUID         = 65532 // the image's user
	manifestGracePeriod = 60    // seconds to flush and hand off leaderships
)

// manifests holds the decoded objects of the manifest directory.
type manifests struct {
	files        []string // the object files, without kustomization.yaml
	kustomize    []string // the resources kustomization.yaml lists; nil without one
	configMaps   []*corev1.ConfigMap
	services     []*corev1.Service
	namespaces   []*corev1.Namespace
	statefulSets []*appsv1.StatefulSet
	pdbs         []*policyv1.PodDisruptionBudget
}

func TestManifests(t *testing.T) {
	files := readManifestFiles(t)
	for _, err := range lintManifests(files) {
		t.Error(err)
	}
}

// TestManifestChecksCatch proves that each check can fail: every case
// breaks one manifest and expects a report containing want.
func TestManifestChecksCatch(t *testing.T) {
	const join = "elcache-0.elcache-peers.$(POD_NAMESPACE).svc.cluster.local:7946,"
	tests := []struct {
		name, file, old, new, want string
	}{
		{"unknown field", "statefulset.yaml", "  replicas: 3", "  replicas: 3\n  replica: 3", `unknown field "replica"`},
		{"field of the wrong case", "statefulset.yaml", "serviceName:", "ServiceName:", `"ServiceName" is not a field`},
		{"duplicate key", "pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 1\n  maxUnavailable: 2", "already set"},
		{"number for a string", "configmap.yaml", `ELCACHE_PARTITIONS: "64"`, "ELCACHE_PARTITIONS: 64", "cannot unmarshal number"},
		{"second document", "pdb.yaml", "maxUnavailable: 1\n", "maxUnavailable: 1\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: elcache\n", "document 2: unknown apiVersion/kind v1 Secret"},
		{"unknown kind", "pdb.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgett", "unknown apiVersion/kind policy/v1 PodDisruptionBudgett"},
		{"old api version", "pdb.yaml", "policy/v1", "policy/v1beta1", "unknown apiVersion/kind policy/v1beta1"},
		{"name without prefix", "service.yaml", "name: elcache\n", "name: cache\n", `name "cache" does not start with "elcache"`},
		{"kustomization misses a file", "kustomization.yaml", "  - pdb.yaml\n", "", "kustomization.yaml resources"},
		{"replicas", "statefulset.yaml", "replicas: 3", "replicas: 1", "replicas = 1, want 3"},
		{"service name", "statefulset.yaml", "serviceName: elcache-peers", "serviceName: elcache", `serviceName "elcache" is not a headless Service`},
		{"headless", "service-headless.yaml", "clusterIP: None", "clusterIP: \"\"", `no headless Service "elcache-peers"`},
		{"not ready addresses", "service-headless.yaml", "publishNotReadyAddresses: true", "publishNotReadyAddresses: false", "publishNotReadyAddresses"},
		{"service selector", "service.yaml", "selector:\n    app.kubernetes.io/name: elcache", "selector:\n    app.kubernetes.io/name: elcash", `Service "elcache" selector`},
		{"service target port", "service-headless.yaml", "targetPort: gossip-udp", "targetPort: gossip", `targetPort "gossip"`},
		{"service port protocol", "service-headless.yaml", "protocol: UDP", "protocol: TCP", `targetPort "gossip-udp"`},
		{"pdb selector", "pdb.yaml", "matchLabels:\n      app.kubernetes.io/name: elcache", "matchLabels:\n      app.kubernetes.io/name: other", "PodDisruptionBudget selector"},
		{"pdb budget", "pdb.yaml", "maxUnavailable: 1", "maxUnavailable: 2", "maxUnavailable"},
		{"probe port", "statefulset.yaml", "          readinessProbe:\n            grpc:\n              port: 7400", "          readinessProbe:\n            grpc:\n              port: 7401", "readinessProbe gRPC port 7401"},
		{"probe kind", "statefulset.yaml", "          livenessProbe:\n            grpc:\n              port: 7400", "          livenessProbe:\n            tcpSocket:\n              port: gossip", `livenessProbe: port "gossip" is not a container port`},
		{"missing probe", "statefulset.yaml", "          startupProbe:\n            grpc:\n              port: 7400\n            periodSeconds: 5\n            timeoutSeconds: 3\n" +
			"            # Up to 5 minutes to form or rejoin the cluster.\n            failureThreshold: 60\n", "", "container has no startupProbe"},
		{"container port renamed", "statefulset.yaml", "- name: admin", "- name: pprof", `no container port named "admin"`},
		{"unknown setting", "configmap.yaml", "ELCACHE_LOG_LEVEL:", "ELCACHE_LOGLEVEL:", "ELCACHE_LOGLEVEL is not an elcache setting"},
		{"grpc addr port", "configmap.yaml", "0.0.0.0:7400", "0.0.0.0:7500", "ELCACHE_GRPC_ADDR listens on port 7500"},
		{"resp addr port", "configmap.yaml", "0.0.0.0:6379", "0.0.0.0:6380", "ELCACHE_RESP_ADDR listens on port 6380"},
		{"resp container port renamed", "statefulset.yaml", "- name: resp", "- name: redis", `no container port named "resp"`},
		{"resp service target port", "service.yaml", "targetPort: resp", "targetPort: redis", `port "resp": targetPort "redis"`},
		{"invalid setting", "configmap.yaml", `ELCACHE_DEFAULT_CONSISTENCY: "linearizable"`, `ELCACHE_DEFAULT_CONSISTENCY: "strong"`, `unknown level "strong"`},
		{"join port", "statefulset.yaml", join, strings.Replace(join, ":7946", ":7400", 1), "is not elcache-N.elcache-peers"},
		{"join beyond replicas", "statefulset.yaml", join, strings.Replace(join, "elcache-0", "elcache-3", 1), "names pod elcache-3"},
		{"join other service", "statefulset.yaml", join, strings.Replace(join, "elcache-peers", "elcache", 1), "is not elcache-N.elcache-peers"},
		{"advertise addr", "statefulset.yaml", "$(ELCACHE_NODE_NAME).elcache-peers", "$(HOSTNAME).elcache-peers", "ELCACHE_ADVERTISE_ADDR"},
		{"reference before definition", "statefulset.yaml", "fieldPath: metadata.namespace", "fieldPath: metadata.namespace\n            - name: X\n              value: $(Y)", "$(Y) is not defined above"},
		{"node name", "statefulset.yaml", "fieldPath: metadata.name\n", "fieldPath: spec.nodeName\n", "ELCACHE_NODE_NAME"},
		{"bootstrap expect", "statefulset.yaml", `value: "3"`, `value: "2"`, "BootstrapExpect = 2"},
		{"data dir", "statefulset.yaml", "mountPath: /data", "mountPath: /var/data", "ELCACHE_DATA_DIR /data is not a volumeClaimTemplate mount"},
		{"config map reference", "statefulset.yaml", "configMapRef:\n                name: elcache", "configMapRef:\n                name: elcache-config", `envFrom names ConfigMap "elcache-config"`},
		{"read-only root", "statefulset.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"capabilities", "statefulset.yaml", `drop: ["ALL"]`, `drop: ["NET_RAW"]`, "capabilities"},
		{"user", "statefulset.yaml", "        runAsUser: 65532", "        runAsUser: 0", "runAsUser"},
		{"grace period", "statefulset.yaml", "terminationGracePeriodSeconds: 60", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds"},
		{"service links", "statefulset.yaml", "enableServiceLinks: false", "enableServiceLinks: true", "enableServiceLinks"},
		{"parallel", "statefulset.yaml", "podManagementPolicy: Parallel", "podManagementPolicy: OrderedReady", "podManagementPolicy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := readManifestFiles(t)
			src, ok := files[tt.file]
			if !ok || !bytes.Contains(src, []byte(tt.old)) {
				t.Fatalf("%s does not contain %q: fix the test case", tt.file, tt.old)
			}
			files[tt.file] = bytes.Replace(src, []byte(tt.old), []byte(tt.new), 1)
			errs := lintManifests(files)
			if !strings.Contains(fmt.Sprint(errs), tt.want) {
				t.Errorf("breaking %s: got %v, want a report containing %q", tt.file, errs, tt.want)
			}
		})
	}
}

// readManifestFiles returns the YAML files of the manifest directory by name.
func readManifestFiles(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if more, _ := filepath.Glob(filepath.Join(manifestDir, "*.yml")); len(more) > 0 {
		t.Fatalf("%v: name manifests *.yaml", more)
	}
	if len(paths) == 0 {
		t.Fatalf("no manifests in %s", manifestDir)
	}
	files := make(map[string][]byte, len(paths))
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = raw
	}
	return files
}

// lintManifests decodes the files and checks them; it returns every problem.
func lintManifests(files map[string][]byte) []error {
	m, errs := decodeManifests(files)
	if len(errs) > 0 {
		return errs // the checks would only repeat them
	}
	return m.check()
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeManifests decodes every document of every file strictly into its
// API type, and kustomization.yaml into its resource list.
func decodeManifests(files map[string][]byte) (*manifests, []error) {
	m := &manifests{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if name == "kustomization.yaml" {
			var k struct {
				APIVersion string   `json:"apiVersion"`
				Kind       string   `json:"kind"`
				Resources  []string `json:"resources"`
			}
			if err := decodeStrict(files[name], &k); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			} else if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
				errs = append(errs, fmt.Errorf("%s: apiVersion/kind %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization", name, k.APIVersion, k.Kind))
			}
			m.kustomize = append([]string{}, k.Resources...) // not nil: there is a kustomization
			continue
		}
		m.files = append(m.files, name)
		for i, doc := range docSeparator.Split(string(files[name]), -1) {
			if err := m.add([]byte(doc)); err != nil {
				errs = append(errs, fmt.Errorf("%s, document %d: %w", name, i+1, err))
			}
		}
	}
	if m.kustomize != nil && !slices.Equal(slices.Sorted(slices.Values(m.kustomize)), m.files) {
		errs = append(errs, fmt.Errorf("kustomization.yaml resources %v, want the manifest files %v", m.kustomize, m.files))
	}
	return m, errs
}

// add decodes one YAML document by its apiVersion and kind.
func (m *manifests) add(doc []byte) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	if string(js) == "null" {
		return nil // only comments
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return err
	}
	var obj metav1.Object
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		m.configMaps, obj = append(m.configMaps, o), o
	case "v1 Service":
		o := &corev1.Service{}
		m.services, obj = append(m.services, o), o
	case "v1 Namespace":
		o := &corev1.Namespace{}
		m.namespaces, obj = append(m.namespaces, o), o
	case "apps/v1 StatefulSet":
		o := &appsv1.StatefulSet{}
		m.statefulSets, obj = append(m.statefulSets, o), o
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		m.pdbs, obj = append(m.pdbs, o), o
	default:
		return fmt.Errorf("unknown apiVersion/kind %s %s", tm.APIVersion, tm.Kind)
	}
	if err := decodeStrict(doc, obj); err != nil {
		return err
	}
	if !strings.HasPrefix(obj.GetName(), "elcache") {
		return fmt.Errorf("%s name %q does not start with \"elcache\"", tm.Kind, obj.GetName())
	}
	return nil
}

// decodeStrict decodes a YAML document into obj and fails on duplicate
// keys, unknown fields, fields spelled in another case (encoding/json
// ignores case, the API server does not) and values of the wrong type.
func decodeStrict(doc []byte, obj any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("more than one value in the document")
	}
	var generic any
	if err := json.Unmarshal(js, &generic); err != nil {
		return err
	}
	return errors.Join(checkFieldNames("", generic, reflect.TypeOf(obj))...)
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// checkFieldNames reports the keys of the JSON value v that name no field
// of typ exactly.
func checkFieldNames(path string, v any, typ reflect.Type) []error {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if reflect.PointerTo(typ).Implements(jsonUnmarshaler) {
		return nil // a Quantity, an IntOrString, a Time: no fields
	}
	var errs []error
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			var ft reflect.Type
			switch typ.Kind() {
			case reflect.Map:
				ft = typ.Elem()
			case reflect.Struct:
				var ok bool
				if ft, ok = jsonFields(typ)[k]; !ok {
					errs = append(errs, fmt.Errorf("%s: %q is not a field of %s", path, k, typ))
					continue
				}
			default:
				continue // decoding has checked the type
			}
			errs = append(errs, checkFieldNames(path+"."+k, x[k], ft)...)
		}
	case []any:
		if typ.Kind() != reflect.Slice && typ.Kind() != reflect.Array {
			break
		}
		for i, e := range x {
			errs = append(errs, checkFieldNames(fmt.Sprintf("%s[%d]", path, i), e, typ.Elem())...)
		}
	}
	return errs
}

// jsonFields maps the JSON names of a struct's fields, those of embedded
// structs included, to their types.
func jsonFields(typ reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case f.Anonymous && name == "":
			maps.Copy(out, jsonFields(f.Type))
		case name == "":
			out[f.Name] = f.Type
		default:
			out[name] = f.Type
		}
	}
	return out
}

// check reports every way the objects disagree with each other or with
// how an elcache node must run.
func (m *manifests) check() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(m.statefulSets) != 1 || m.statefulSets[0].Name != manifestStatefulSet {
		bad("want one StatefulSet named %q, got %d", manifestStatefulSet, len(m.statefulSets))
		return errs
	}
	sts := m.statefulSets[0]
	spec := sts.Spec
	pod := spec.Template.Spec
	podLabels := labels.Set(spec.Template.Labels)
	if len(pod.Containers) != 1 {
		bad("StatefulSet: want one container, got %d", len(pod.Containers))
		return errs
	}
	c := pod.Containers[0]

	if spec.Replicas == nil || *spec.Replicas != manifestReplicas {
		bad("StatefulSet replicas = %v, want %d", deref(spec.Replicas), manifestReplicas)
	}
	if spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		bad("StatefulSet podManagementPolicy = %q, want Parallel: no node is ready until the cluster forms", spec.PodManagementPolicy)
	}
	if err := selects("StatefulSet selector", spec.Selector, podLabels); err != nil {
		errs = append(errs, err)
	}

	// Services: the headless one names the pods, both select them and
	// target ports the container has.
	var headless *corev1.Service
	for _, svc := range m.services {
		if svc.Name == spec.ServiceName && svc.Spec.ClusterIP == corev1.ClusterIPNone {
			headless = svc
		}
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			bad("Service %q selector %v does not select the pods (labels %v)", svc.Name, svc.Spec.Selector, podLabels)
		}
		for _, p := range svc.Spec.Ports {
			if _, ok := containerPort(c, p.TargetPort.String(), p.Protocol); !ok {
				bad("Service %q port %q: targetPort %q is not a %s port of the container", svc.Name, p.Name, p.TargetPort.String(), p.Protocol)
			}
		}
	}
	switch {
	case spec.ServiceName != manifestHeadless:
		bad("StatefulSet serviceName %q is not a headless Service named %q", spec.ServiceName, manifestHeadless)
	case headless == nil:
		bad("no headless Service %q (clusterIP: None) for the StatefulSet", spec.ServiceName)
	case !headless.Spec.PublishNotReadyAddresses:
		bad("Service %q needs publishNotReadyAddresses: true: nodes find each other before they are ready", headless.Name)
	}

	// Container ports and probes.
	port := map[string]int32{}
	for _, want := range []struct {
		name  string
		proto corev1.Protocol
	}{{"grpc", corev1.ProtocolTCP}, {"gossip-tcp", corev1.ProtocolTCP}, {"gossip-udp", corev1.ProtocolUDP}, {"admin", corev1.ProtocolTCP}, {"resp", corev1.ProtocolTCP}} {
		p, ok := containerPort(c, want.name, want.proto)
		if !ok {
			bad("no container port named %q (%s)", want.name, want.proto)
		}
		port[want.name] = p
	}
	if port["gossip-tcp"] != port["gossip-udp"] {
		bad("gossip ports differ: TCP %d, UDP %d", port["gossip-tcp"], port["gossip-udp"])
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
	}{{"startupProbe", c.StartupProbe}, {"readinessProbe", c.ReadinessProbe}, {"livenessProbe", c.LivenessProbe}} {
		if pr.probe == nil {
			bad("container has no %s", pr.name)
			continue
		}
		h := pr.probe.ProbeHandler
		for _, p := range probePorts(h) {
			if _, ok := containerPort(c, p, corev1.ProtocolTCP); !ok {
				bad("%s: port %q is not a container port", pr.name, p)
			}
		}
		switch {
		case h.GRPC == nil:
			bad("%s does not use the gRPC health check", pr.name)
		case h.GRPC.Port != port["grpc"] || h.GRPC.Port != 7400:
			bad("%s gRPC port %d, want the grpc container port 7400", pr.name, h.GRPC.Port)
		case h.GRPC.Service != nil && *h.GRPC.Service != "":
			bad("%s checks service %q; the empty name reports the whole node", pr.name, *h.GRPC.Service)
		}
	}

	// The environment: ConfigMap keys and container variables are elcache
	// settings, references are defined first, and the node's own address
	// and seeds name pods of the headless Service.
	valid := map[string]bool{"ELCACHE_LOG_LEVEL": true, "ELCACHE_CONFIG": true}
	for _, s := range settings() {
		valid[envName(s.name)] = true
	}
	env := map[string]string{} // as the pod elcache-0 in namespace ns sees it
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil || from.Prefix != "" {
			bad("envFrom: want a ConfigMap without prefix")
			continue
		}
		cm := m.configMap(from.ConfigMapRef.Name)
		if cm == nil {
			bad("envFrom names ConfigMap %q, which is not among the manifests", from.ConfigMapRef.Name)
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
			if !valid[k] {
				bad("ConfigMap %q key %s is not an elcache setting", cm.Name, k)
			}
			env[k] = cm.Data[k]
		}
	}
	fieldRefs := map[string]string{}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "ELCACHE_") && !valid[e.Name] {
			bad("container variable %s is not an elcache setting", e.Name)
		}
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			fieldRefs[e.Name] = e.ValueFrom.FieldRef.FieldPath
			env[e.Name] = map[string]string{"metadata.name": manifestStatefulSet + "-0", "metadata.namespace": "ns"}[e.ValueFrom.FieldRef.FieldPath]
		case e.ValueFrom != nil:
			bad("container variable %s: only fieldRef is expected", e.Name)
		default:
			v, err := expandEnv(e.Value, env)
			if err != nil {
				bad("container variable %s: %v", e.Name, err)
			}
			env[e.Name] = v
		}
	}
	if fieldRefs["ELCACHE_NODE_NAME"] != "metadata.name" || fieldRefs["POD_NAMESPACE"] != "metadata.namespace" {
		bad("ELCACHE_NODE_NAME and POD_NAMESPACE must come from metadata.name and metadata.namespace, got %v", fieldRefs)
	}
	host := func(pod string) string {
		return pod + "." + manifestHeadless + ".$(POD_NAMESPACE).svc.cluster.local"
	}
	if want := host("$(ELCACHE_NODE_NAME)") + ":" + strconv.Itoa(int(port["grpc"])); envValue(c, "ELCACHE_ADVERTISE_ADDR") != want {
		bad("ELCACHE_ADVERTISE_ADDR = %q, want %q", envValue(c, "ELCACHE_ADVERTISE_ADDR"), want)
	}
	seed := regexp.MustCompile(`^` + regexp.QuoteMeta(manifestStatefulSet) + `-(\d+)$`)
	join := envValue(c, "ELCACHE_JOIN")
	if join == "" {
		bad("ELCACHE_JOIN is not set")
	}
	for _, j := range strings.Split(join, ",") {
		h, p, _ := strings.Cut(j, ":")
		podName, _, _ := strings.Cut(h, ".")
		match := seed.FindStringSubmatch(podName)
		if match == nil || h != host(podName) || p != strconv.Itoa(int(port["gossip-tcp"])) {
			bad("ELCACHE_JOIN entry %q is not %s-N.%s.$(POD_NAMESPACE).svc.cluster.local:%d", j, manifestStatefulSet, manifestHeadless, port["gossip-tcp"])
		} else if n, _ := strconv.Atoi(match[1]); n >= manifestReplicas {
			bad("ELCACHE_JOIN entry %q names pod %s, beyond the %d replicas", j, podName, manifestReplicas)
		}
	}
	for _, listen := range []struct{ key, port string }{{"ELCACHE_GRPC_ADDR", "grpc"}, {"ELCACHE_GOSSIP_ADDR", "gossip-tcp"}, {"ELCACHE_ADMIN_ADDR", "admin"}, {"ELCACHE_RESP_ADDR", "resp"}} {
		if port[listen.port] == 0 {
			continue // reported above
		}
		_, p, err := net.SplitHostPort(env[listen.key])
		if err != nil || p != strconv.Itoa(int(port[listen.port])) {
			bad("%s listens on port %s (%q), want the %s container port %d", listen.key, p, env[listen.key], listen.port, port[listen.port])
		}
	}

	// The node accepts this environment.
	cfg, _, err := loadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		bad("the node refuses the pod's environment: %v", err)
	} else {
		if cfg.BootstrapExpect != manifestReplicas {
			bad("BootstrapExpect = %d, want the %d replicas", cfg.BootstrapExpect, manifestReplicas)
		}
		if cfg.Cluster.ReplicationFactor > manifestReplicas {
			bad("replication factor %d is more than the %d replicas", cfg.Cluster.ReplicationFactor, manifestReplicas)
		}
		claimed := false
		for _, vm := range c.VolumeMounts {
			for _, vct := range spec.VolumeClaimTemplates {
				claimed = claimed || (vm.Name == vct.Name && vm.MountPath == cfg.DataDir && !vm.ReadOnly)
			}
		}
		if !claimed {
			bad("ELCACHE_DATA_DIR %s is not a volumeClaimTemplate mount", cfg.DataDir)
		}
	}

	// Security and shutdown.
	psc, csc := pod.SecurityContext, c.SecurityContext
	if psc == nil || csc == nil {
		bad("pod and container need a securityContext")
		return errs
	}
	if !deref(psc.RunAsNonRoot) || deref(psc.RunAsUser) != manifestUID || deref(psc.FSGroup) != manifestUID {
		bad("pod securityContext: want runAsNonRoot, runAsUser and fsGroup %d", manifestUID)
	}
	if csc.RunAsUser != nil && *csc.RunAsUser != manifestUID {
		bad("container securityContext runAsUser %d, want %d", *csc.RunAsUser, manifestUID)
	}
	if !deref(csc.ReadOnlyRootFilesystem) {
		bad("container securityContext: want readOnlyRootFilesystem")
	}
	if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		bad("container securityContext: want allowPrivilegeEscalation: false")
	}
	if csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0 {
		bad("container securityContext: capabilities must drop ALL and add none")
	}
	if deref(pod.TerminationGracePeriodSeconds) < manifestGracePeriod {
		bad("terminationGracePeriodSeconds = %d, want at least %d", deref(pod.TerminationGracePeriodSeconds), manifestGracePeriod)
	}
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		bad("enableServiceLinks must be false: the Service %q would set ELCACHE_* variables", manifestStatefulSet)
	}

	// The disruption budget keeps a quorum of every partition.
	if len(m.pdbs) != 1 {
		bad("want one PodDisruptionBudget, got %d", len(m.pdbs))
		return errs
	}
	pdb := m.pdbs[0]
	if err := selects("PodDisruptionBudget selector", pdb.Spec.Selector, podLabels); err != nil {
		errs = append(errs, err)
	}
	if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.String() != "1" {
		bad("PodDisruptionBudget: want maxUnavailable: 1")
	}
	return errs
}

func (m *manifests) configMap(name string) *corev1.ConfigMap {
	for _, cm := range m.configMaps {
		if cm.Name == name {
			return cm
		}
	}
	return nil
}

// selects reports an error unless sel is non-empty and matches set.
func selects(what string, sel *metav1.LabelSelector, set labels.Set) error {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if sel == nil || s.Empty() || !s.Matches(set) {
		return fmt.Errorf("%s %q does not select the pods (labels %v)", what, metav1.FormatLabelSelector(sel), set)
	}
	return nil
}

// containerPort finds a port of c by name or number and protocol.
func containerPort(c corev1.Container, nameOrNumber string, proto corev1.Protocol) (int32, bool) {
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, p := range c.Ports {
		pp := p.Protocol
		if pp == "" {
			pp = corev1.ProtocolTCP
		}
		if pp == proto && (p.Name == nameOrNumber || strconv.Itoa(int(p.ContainerPort)) == nameOrNumber) {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// probePorts returns the ports, by name or number, of a probe's HTTP
// and TCP handlers.
func probePorts(h corev1.ProbeHandler) []string {
	var out []string
	if h.HTTPGet != nil {
		out = append(out, h.HTTPGet.Port.String())
	}
	if h.TCPSocket != nil {
		out = append(out, h.TCPSocket.Port.String())
	}
	return out
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandEnv replaces $(NAME) as the kubelet does, and reports references
// to variables not defined before.
func expandEnv(v string, env map[string]string) (string, error) {
	var errs []error
	out := envRef.ReplaceAllStringFunc(v, func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		val, ok := env[name]
		if !ok {
			errs = append(errs, fmt.Errorf("$(%s) is not defined above", name))
			return ref
		}
		return val
	})
	return out, errors.Join(errs...)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
