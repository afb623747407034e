package deploy_test

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The stack's other monitoring files, decoded strictly: Prometheus's
// scrape configuration, Grafana's provisioning and the compose files; and
// the checks that hold them and the dashboard together.

// Prometheus's configuration, the part this stack uses.
type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName        string `yaml:"job_name"`
		ScrapeInterval string `yaml:"scrape_interval"`
		MetricsPath    string `yaml:"metrics_path"`
		StaticConfigs  []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// Grafana's provisioning files.
type grafanaDatasources struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string         `yaml:"name"`
		Type      string         `yaml:"type"`
		UID       string         `yaml:"uid"`
		Access    string         `yaml:"access"`
		URL       string         `yaml:"url"`
		IsDefault bool           `yaml:"isDefault"`
		Editable  bool           `yaml:"editable"`
		JSONData  map[string]any `yaml:"jsonData"`
	} `yaml:"datasources"`
}

type grafanaDashboards struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name                  string `yaml:"name"`
		OrgID                 int    `yaml:"orgId"`
		Folder                string `yaml:"folder"`
		Type                  string `yaml:"type"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// composeFile is the full compose override, the part it uses.
type composeFile struct {
	Version     string                    `yaml:"version"`
	FullEnv     map[string]string         `yaml:"x-full-env"`
	FullDepends composeDepends            `yaml:"x-full-depends"`
	Services    map[string]composeService `yaml:"services"`
	Volumes     map[string]*struct{}      `yaml:"volumes"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Restart     string            `yaml:"restart"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   composeDepends    `yaml:"depends_on"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
		Timeout  string   `yaml:"timeout"`
		Retries  int      `yaml:"retries"`
	} `yaml:"healthcheck"`
	Ports   []string `yaml:"ports"`
	Volumes []string `yaml:"volumes"`
}

// composeDepends maps a service to the condition another waits for; it
// reads both compose forms (a list of names, a map of conditions).
type composeDepends map[string]string

func (d *composeDepends) UnmarshalYAML(n *yaml.Node) error {
	*d = composeDepends{}
	if n.Kind == yaml.SequenceNode {
		var names []string
		if err := n.Decode(&names); err != nil {
			return err
		}
		for _, s := range names {
			(*d)[s] = "service_started"
		}
		return nil
	}
	var m map[string]struct {
		Condition string `yaml:"condition"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for s, c := range m {
		(*d)[s] = c.Condition
	}
	return nil
}

// composeBase is the 3-node compose file the full one overrides.
type composeBase struct {
	Services map[string]composeBaseService `yaml:"services"`
}

// composeBaseService is a service of the base file, the part read.
type composeBaseService struct {
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
}

// monitoring holds the decoded monitoring files.
type monitoring struct {
	dash        dashboard
	prom        promConfig
	datasources grafanaDatasources
	dashboards  grafanaDashboards
	base        composeBase
	full        composeFile
}

// decodeYAML decodes one YAML document into v, rejecting unknown fields.
func decodeYAML(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func readMonitoring(t *testing.T) *monitoring {
	t.Helper()
	read := func(name string) []byte {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(deployDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	m := &monitoring{}
	var err error
	if m.dash, err = decodeDashboard(read(dashboardFile)); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	for name, v := range map[string]any{
		promConfigFile: &m.prom,
		provisioningDir + "/datasources/prometheus.yml": &m.datasources,
		provisioningDir + "/dashboards/elcache.yml":     &m.dashboards,
		fullComposeFile: &m.full,
	} {
		if err := decodeYAML(read(name), v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// The base file is not ours to keep strict: its x-node anchor and
	// settings are read only for the node services.
	if err := yaml.Unmarshal(read(baseComposeFile), &m.base); err != nil {
		t.Fatalf("%s: %v", baseComposeFile, err)
	}
	return m
}

// lintMonitoring checks the dashboard and the stack's files against each
// other.
func lintMonitoring(m *monitoring) []error {
	errs := lintDashboard(m.dash)
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	svc := m.full.Services

	// The node services are those of the base file; the override must give
	// each the same metrics port, on an address other containers reach.
	var nodes []string
	for name, s := range m.base.Services {
		if s.Environment["ELCACHE_NODE_NAME"] != "" {
			nodes = append(nodes, name)
		}
	}
	slices.Sort(nodes)
	if len(nodes) == 0 {
		bad("%s: no node services", baseComposeFile)
	}
	metricsPort := ""
	for _, n := range nodes {
		env := svc[n].Environment
		host, port, err := net.SplitHostPort(env["ELCACHE_METRICS_ADDR"])
		switch {
		case err != nil:
			bad("%s: %s: ELCACHE_METRICS_ADDR %q: %v", fullComposeFile, n, env["ELCACHE_METRICS_ADDR"], err)
		case host != "" && host != "0.0.0.0":
			bad("%s: %s: ELCACHE_METRICS_ADDR %q: Prometheus, in another container, cannot reach it", fullComposeFile, n, env["ELCACHE_METRICS_ADDR"])
		case metricsPort != "" && port != metricsPort:
			bad("%s: %s: metrics port %s, others %s", fullComposeFile, n, port, metricsPort)
		default:
			metricsPort = port
		}
		if env["ELCACHE_DEFAULT_WRITE_MODE"] != "write_through" || env["ELCACHE_BACKEND_CREATE_TABLE"] != "true" {
			bad("%s: %s: want ELCACHE_DEFAULT_WRITE_MODE=write_through and ELCACHE_BACKEND_CREATE_TABLE=true", fullComposeFile, n)
		}
		u, err := url.Parse(env["ELCACHE_BACKEND"])
		if err != nil || u.Scheme != "postgres" || u.User == nil {
			bad("%s: %s: ELCACHE_BACKEND %q is not a postgres:// URL with a user", fullComposeFile, n, env["ELCACHE_BACKEND"])
			continue
		}
		db, ok := svc[u.Hostname()]
		pass, _ := u.User.Password()
		if !ok || db.Environment["POSTGRES_USER"] != u.User.Username() || db.Environment["POSTGRES_PASSWORD"] != pass ||
			db.Environment["POSTGRES_DB"] != strings.TrimPrefix(u.Path, "/") {
			bad("%s: %s: ELCACHE_BACKEND %q does not match a postgres service's POSTGRES_USER, _PASSWORD and _DB", fullComposeFile, n, u.Redacted())
		} else if db.Healthcheck == nil || len(db.Healthcheck.Test) == 0 || svc[n].DependsOn[u.Hostname()] != "service_healthy" {
			bad("%s: %s must depend on %s being healthy, which needs a healthcheck", fullComposeFile, n, u.Hostname())
		}
	}

	errs = append(errs, lintRESPPorts(m.base, nodes)...)

	// Prometheus scrapes exactly those nodes on that port.
	var jobs []string
	for _, sc := range m.prom.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
		if sc.JobName != promJob {
			continue
		}
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			bad("%s: job %s: metrics_path %q, the node serves /metrics", promConfigFile, promJob, sc.MetricsPath)
		}
		var targets, want []string
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
		for _, n := range nodes {
			want = append(want, net.JoinHostPort(n, metricsPort))
		}
		slices.Sort(targets)
		if !slices.Equal(targets, want) {
			bad("%s: job %s targets %v, want %v (the compose nodes' ELCACHE_METRICS_ADDR port)", promConfigFile, promJob, targets, want)
		}
	}
	if !slices.Contains(jobs, promJob) {
		bad("%s: no job %q (jobs %v)", promConfigFile, promJob, jobs)
	}
	if m.prom.Global.ScrapeInterval != "15s" {
		bad("%s: scrape_interval %q, want 15s", promConfigFile, m.prom.Global.ScrapeInterval)
	}
	prom, promOK := svc["prometheus"]
	if !promOK || !mounts(prom, "../"+promConfigFile, promConfigMount) {
		bad("%s: no prometheus service mounting ../%s at %s", fullComposeFile, promConfigFile, promConfigMount)
	}

	// Grafana: its data source is that Prometheus, its provider loads the
	// directory the dashboard is mounted into.
	var dsURLs []string
	for _, ds := range m.datasources.Datasources {
		if ds.Type == "prometheus" && ds.UID == "prometheus" && ds.IsDefault {
			dsURLs = append(dsURLs, ds.URL)
		}
	}
	if len(dsURLs) != 1 {
		bad("provisioning: want one default prometheus data source with uid prometheus, got %v", dsURLs)
	} else if u, err := url.Parse(dsURLs[0]); err != nil || !promOK || !slices.ContainsFunc(prom.Ports, func(p string) bool {
		return strings.HasSuffix(p, ":"+u.Port())
	}) || u.Hostname() != "prometheus" {
		bad("provisioning: data source URL %q is not the prometheus service's port", dsURLs[0])
	}
	grafana, ok := svc["grafana"]
	if !ok || grafana.Environment["GF_AUTH_ANONYMOUS_ENABLED"] != "true" {
		bad("%s: no grafana service with GF_AUTH_ANONYMOUS_ENABLED=true", fullComposeFile)
	}
	if !mounts(grafana, "../"+provisioningDir, provisioningMount) {
		bad("%s: grafana does not mount ../%s at %s", fullComposeFile, provisioningDir, provisioningMount)
	}
	if len(m.dashboards.Providers) != 1 || m.dashboards.Providers[0].Type != "file" {
		bad("provisioning: want one file dashboard provider, got %+v", m.dashboards.Providers)
	} else if dir := m.dashboards.Providers[0].Options.Path; !mounts(grafana, "../"+dashboardFile, dir+"/") {
		bad("%s: grafana does not mount ../%s into the provider's directory %s", fullComposeFile, dashboardFile, dir)
	}
	if home := grafana.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" && !mounts(grafana, "../"+dashboardFile, home) {
		bad("%s: grafana's home dashboard %s is not the mounted dashboard", fullComposeFile, home)
	}

	// The added services: pinned images, ports on the loopback only.
	for _, name := range []string{"postgres", "prometheus", "grafana"} {
		s := svc[name]
		if _, tag, _ := strings.Cut(s.Image, ":"); tag == "" || tag == "latest" {
			bad("%s: %s: image %q has no pinned tag", fullComposeFile, name, s.Image)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				bad("%s: %s: port %q is published beyond the loopback", fullComposeFile, name, p)
			}
		}
	}
	for _, s := range svc {
		for _, v := range s.Volumes {
			if src, _, _ := strings.Cut(v, ":"); !strings.HasPrefix(src, ".") {
				if _, ok := m.full.Volumes[src]; !ok {
					bad("%s: volume %q is not declared", fullComposeFile, src)
				}
			} else if _, err := os.Stat(filepath.Join(deployDir, "compose", src)); err != nil {
				bad("%s: mount of %s: %v", fullComposeFile, src, err)
			}
		}
	}
	return errs
}

// lintRESPPorts checks the base file's Redis-protocol ports: every node
// listens on one port on all its interfaces and publishes it on the host's
// loopback, each node on a host port of its own.
func lintRESPPorts(base composeBase, nodes []string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	respPort := ""
	hostPorts := map[string]string{} // host port -> node
	for _, n := range nodes {
		s := base.Services[n]
		addr := s.Environment["ELCACHE_RESP_ADDR"]
		host, port, err := net.SplitHostPort(addr)
		switch {
		case err != nil:
			bad("%s: %s: ELCACHE_RESP_ADDR %q: %v", baseComposeFile, n, addr, err)
			continue
		case host != "0.0.0.0":
			bad("%s: %s: ELCACHE_RESP_ADDR %q: the published port cannot reach it", baseComposeFile, n, addr)
		case respPort != "" && port != respPort:
			bad("%s: %s: Redis port %s, others %s", baseComposeFile, n, port, respPort)
		}
		respPort = port
		var published []string
		for _, p := range s.Ports {
			// [[HOST_IP:]HOST_PORT:]CONTAINER_PORT
			f := strings.Split(p, ":")
			if f[len(f)-1] != port {
				continue
			}
			published = append(published, p)
			if len(f) != 3 || f[0] != "127.0.0.1" {
				bad("%s: %s: port %q is published beyond the loopback", baseComposeFile, n, p)
				continue
			}
			if other, ok := hostPorts[f[1]]; ok {
				bad("%s: %s and %s both publish host port %s", baseComposeFile, other, n, f[1])
			}
			hostPorts[f[1]] = n
		}
		if len(published) != 1 {
			bad("%s: %s publishes its Redis port %s %d times, want once (127.0.0.1:HOST:%s)", baseComposeFile, n, port, len(published), port)
		}
	}
	return errs
}

// mounts reports whether s bind-mounts src (relative to deploy/compose) at
// dst, or into dst when dst ends in "/".
func mounts(s composeService, src, dst string) bool {
	return slices.ContainsFunc(s.Volumes, func(v string) bool {
		f := strings.Split(v, ":")
		if len(f) < 2 || path.Clean(f[0]) != path.Clean(src) {
			return false
		}
		if strings.HasSuffix(dst, "/") {
			return path.Dir(f[1]) == path.Clean(dst)
		}
		return f[1] == dst
	})
}
