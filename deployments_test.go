package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// knownSettings are the MARQUEE_* variables the configuration reads.
func knownSettings(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("config/config.go")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(MARQUEE_[A-Z0-9_]+)"`).FindAllSubmatch(src, -1) {
		known[string(m[1])] = true
	}
	if len(known) < 10 {
		t.Fatalf("found only %d settings in config/config.go", len(known))
	}
	return known
}

// secretSetting reports whether a variable holds a secret (or a URL that
// carries credentials): such values never appear in a manifest.
func secretSetting(name string) bool {
	if name == "MARQUEE_STRIPE_PUBLISHABLE_KEY" {
		return false
	}
	for _, s := range []string{"SECRET", "TOKEN", "PASSWORD", "DATABASE_URL", "DATABASE_SERVERS", "REDIS_URL", "REDIS_CLUSTER"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// checkArgs fails unless args name a runnable subcommand of this binary
// with flags it accepts.
func checkArgs(t *testing.T, where string, args []string) {
	t.Helper()
	r := root()
	cmd, rest, err := r.Find(args)
	if err != nil || cmd == r || !cmd.Runnable() {
		t.Errorf("%s: %q is not a marquee command (%v)", where, args, err)
		return
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Errorf("%s: %q: %v", where, args, err)
	}
}

// decodeStrict decodes one manifest (YAML) into out, refusing any field the
// Kubernetes API type does not have.
func decodeStrict(doc []byte, out any) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// manifests is what deployments/kubernetes holds, by kind.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	jobs        map[string]*batchv1.Job
	budgets     []*policyv1.PodDisruptionBudget
	services    map[string]*corev1.Service
}

// pods returns every pod template, named by its workload.
func (m manifests) pods() map[string]corev1.PodTemplateSpec {
	out := map[string]corev1.PodTemplateSpec{}
	for name, d := range m.deployments {
		out["Deployment "+name] = d.Spec.Template
	}
	for name, j := range m.jobs {
		out["Job "+name] = j.Spec.Template
	}
	return out
}

func readManifests(t *testing.T, path string) manifests {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := manifests{deployments: map[string]*appsv1.Deployment{}, jobs: map[string]*batchv1.Job{}, services: map[string]*corev1.Service{}}
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
		var head metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("document %d: %v", i+1, err)
		}
		var obj interface{ GetName() string }
		var keep func()
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			obj, keep = d, func() { m.deployments[d.Name] = d }
		case "batch/v1 Job":
			j := &batchv1.Job{}
			obj, keep = j, func() { m.jobs[j.Name] = j }
		case "policy/v1 PodDisruptionBudget":
			b := &policyv1.PodDisruptionBudget{}
			obj, keep = b, func() { m.budgets = append(m.budgets, b) }
		case "v1 Service":
			s := &corev1.Service{}
			obj, keep = s, func() { m.services[s.Name] = s }
		default:
			t.Fatalf("document %d: unexpected object %q %q", i+1, head.APIVersion, head.Kind)
		}
		if err := decodeStrict([]byte(doc), obj); err != nil {
			t.Fatalf("document %d (%s): %v", i+1, head.Kind, err)
		}
		if obj.GetName() == "" {
			t.Fatalf("document %d (%s) has no name", i+1, head.Kind)
		}
		keep()
	}
	return m
}

func matches(selector *metav1.LabelSelector, podLabels map[string]string) bool {
	if selector == nil || len(selector.MatchLabels) == 0 {
		return false
	}
	for k, v := range selector.MatchLabels {
		if podLabels[k] != v {
			return false
		}
	}
	return true
}

// TestDeploymentsAreValid decodes every object of the Kubernetes manifests
// strictly into the API types and checks what a deployment relies on:
// horizontally scaled API and workers, exactly one scheduler, probes on
// /healthz and /readyz, resource requests everywhere, disruption budgets,
// the migration Job run before a rollout, secrets only from the Secret,
// settings the configuration knows, and commands the binary has.
func TestDeploymentsAreValid(t *testing.T) {
	m := readManifests(t, "deployments/kubernetes/marquee.yaml")
	known := knownSettings(t)

	api, scheduler, worker := m.deployments["marquee-api"], m.deployments["marquee-scheduler"], m.deployments["marquee-worker"]
	migrate := m.jobs["marquee-migrate"]
	if api == nil || scheduler == nil || worker == nil || migrate == nil {
		t.Fatalf("want Deployments marquee-api, marquee-scheduler, marquee-worker and Job marquee-migrate; have %v and %v", keys(m.deployments), keys(m.jobs))
	}
	replicas := func(d *appsv1.Deployment) int32 {
		if d.Spec.Replicas == nil {
			return 1
		}
		return *d.Spec.Replicas
	}
	if replicas(api) < 2 || replicas(worker) < 2 {
		t.Errorf("API and workers must run more than one replica: %d, %d", replicas(api), replicas(worker))
	}
	if replicas(scheduler) != 1 || scheduler.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("the scheduler must be exactly one replica, replaced with Recreate (never two during a rollout): %d, %q", replicas(scheduler), scheduler.Spec.Strategy.Type)
	}

	schedulers := 0
	image := ""
	for where, pod := range m.pods() {
		spec := pod.Spec
		if len(spec.Containers) != 1 {
			t.Errorf("%s: want one container, have %d", where, len(spec.Containers))
			continue
		}
		c := spec.Containers[0]
		if image == "" {
			image = c.Image
		} else if c.Image != image {
			t.Errorf("%s runs image %q, others %q", where, c.Image, image)
		}
		checkArgs(t, where, c.Args)
		if len(c.Args) > 0 && c.Args[0] == "worker" && !contains(c.Args, "--scheduler=false") {
			schedulers++
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("%s: no CPU and memory requests", where)
		}
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
			if !known[e.Name] {
				t.Errorf("%s: %s is not a setting the configuration reads", where, e.Name)
			}
			if secretSetting(e.Name) && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Errorf("%s: %s must come from a Secret", where, e.Name)
			}
		}
		for _, need := range []string{"MARQUEE_DATABASE_URL", "MARQUEE_SECRET_KEY", "MARQUEE_DEPLOYMENT_ID"} {
			if _, ok := env[need]; !ok {
				t.Errorf("%s: %s not set", where, need)
			}
		}
		// One Redis or a Redis Cluster, never both (the configuration refuses both).
		_, single := env["MARQUEE_REDIS_URL"]
		_, cluster := env["MARQUEE_REDIS_CLUSTER"]
		if single == cluster {
			t.Errorf("%s: want exactly one of MARQUEE_REDIS_URL and MARQUEE_REDIS_CLUSTER", where)
		}
	}
	if schedulers != 1 {
		t.Errorf("%d workloads run the scheduler, want exactly 1", schedulers)
	}

	c := api.Spec.Template.Spec.Containers[0]
	probe := func(p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			t.Errorf("API: want an HTTP probe on %s, have %+v", path, p)
			return
		}
		if name := p.HTTPGet.Port.StrVal; name != "" && !containerPort(c, name) {
			t.Errorf("API probe on %s names port %q, which the container does not declare", path, name)
		}
	}
	probe(c.ReadinessProbe, "/readyz")
	probe(c.LivenessProbe, "/healthz")
	if svc := m.services["marquee-api"]; svc == nil || !matches(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, api.Spec.Template.Labels) {
		t.Error("no Service selects the API pods")
	}

	covered := func(d *appsv1.Deployment) bool {
		for _, b := range m.budgets {
			if matches(b.Spec.Selector, d.Spec.Template.Labels) && (b.Spec.MaxUnavailable != nil || b.Spec.MinAvailable != nil) {
				return true
			}
		}
		return false
	}
	if !covered(api) || !covered(worker) {
		t.Error("the API and the workers need a PodDisruptionBudget")
	}
	for _, d := range []*appsv1.Deployment{api, scheduler, worker} {
		if !matches(d.Spec.Selector, d.Spec.Template.Labels) {
			t.Errorf("%s: selector does not select its own pods", d.Name)
		}
	}

	if !contains(migrate.Spec.Template.Spec.Containers[0].Args, "migrate") {
		t.Error("the migration Job does not run migrate")
	}
	if migrate.Annotations["argocd.argoproj.io/hook"] != "PreSync" || !strings.Contains(migrate.Annotations["helm.sh/hook"], "pre-upgrade") {
		t.Errorf("the migration Job is not marked to run before a rollout: %v", migrate.Annotations)
	}
	if rp := migrate.Spec.Template.Spec.RestartPolicy; rp != corev1.RestartPolicyOnFailure && rp != corev1.RestartPolicyNever {
		t.Errorf("a Job's pods must not restart Always: %q", rp)
	}
}

// TestComposeIsValid loads the compose file with compose-go (which checks
// it against the Compose specification's schema) and checks the stack: the
// API, workers and exactly one scheduler start after the migration; every
// secret comes from the caller's environment, and compose refuses to start
// without them.
func TestComposeIsValid(t *testing.T) {
	path, err := filepath.Abs("deployments/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	load := func(env []string) (map[string][]string, map[string]map[string]string, error) {
		opts, err := cli.NewProjectOptions([]string{path}, cli.WithName("marquee"), cli.WithWorkingDirectory(filepath.Dir(path)), cli.WithEnv(env))
		if err != nil {
			return nil, nil, err
		}
		p, err := opts.LoadProject(context.Background())
		if err != nil {
			return nil, nil, err
		}
		commands, deps := map[string][]string{}, map[string]map[string]string{}
		for name, s := range p.Services {
			commands[name] = s.Command
			deps[name] = map[string]string{}
			for dep, d := range s.DependsOn {
				deps[name][dep] = d.Condition
			}
		}
		return commands, deps, nil
	}
	if _, _, err := load(nil); err == nil || !strings.Contains(err.Error(), "MARQUEE_") {
		t.Fatalf("compose loaded without the secrets: %v", err)
	}
	commands, deps, err := load([]string{
		"MARQUEE_POSTGRES_PASSWORD=pw", "MARQUEE_SECRET_KEY=" + strings.Repeat("k", 40),
		"MARQUEE_STRIPE_SECRET_KEY=sk_test_x", "MARQUEE_STRIPE_WEBHOOK_SECRET=whsec_x", "MARQUEE_METRICS_TOKEN=t",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"postgres", "redis", "stripe-mock", "migrate", "api", "worker", "scheduler"} {
		if _, ok := commands[want]; !ok {
			t.Errorf("compose has no %s service (has %v)", want, keys(commands))
		}
	}
	schedulers := 0
	for _, name := range []string{"migrate", "api", "worker", "scheduler"} {
		checkArgs(t, "compose "+name, commands[name])
		if len(commands[name]) > 0 && commands[name][0] == "worker" && !contains(commands[name], "--scheduler=false") {
			schedulers++
		}
		if name != "migrate" && deps[name]["migrate"] != "service_completed_successfully" {
			t.Errorf("compose %s does not wait for the migration (%v)", name, deps[name])
		}
	}
	if schedulers != 1 {
		t.Errorf("%d compose services run the scheduler, want exactly 1", schedulers)
	}
	if deps["migrate"]["postgres"] != "service_healthy" {
		t.Errorf("the migration does not wait for a healthy PostgreSQL: %v", deps["migrate"])
	}
}

// TestDockerfileBuildsWithThisGo: the image's build stage uses the Go
// release go.mod names, and the image runs the binary as a non-root user.
func TestDockerfileBuildsWithThisGo(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	docker, err := os.ReadFile("deployments/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	from := regexp.MustCompile(`(?m)^FROM golang:(\d+\.\d+)`).FindSubmatch(docker)
	if goLine == nil || from == nil || string(goLine[1]) != string(from[1]) {
		t.Fatalf("Dockerfile builds with golang:%s, go.mod needs go %s", from, goLine)
	}
	for _, want := range []string{"USER nonroot", `ENTRYPOINT ["/marquee"]`, "CGO_ENABLED=0"} {
		if !bytes.Contains(docker, []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func containerPort(c corev1.Container, name string) bool {
	for _, p := range c.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}
