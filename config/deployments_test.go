package config_test

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// secretVariables are the settings that must never fall back to a default
// in a deployment: the public development values would let anyone forge
// payments, order links and sessions.
var secretVariables = []string{
	"MARQUEE_DATABASE_URL", "MARQUEE_SECRET_KEY", "MARQUEE_STRIPE_SECRET_KEY",
	"MARQUEE_STRIPE_WEBHOOK_SECRET", "MARQUEE_METRICS_TOKEN",
}

type k8sEnv struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type k8sContainer struct {
	Name string   `yaml:"name"`
	Args []string `yaml:"args"`
	Env  []k8sEnv `yaml:"env"`
}

// Every Kubernetes container that runs Marquee takes each secret from the
// Secret by reference, never as a literal, and none runs in development mode.
func TestKubernetesManifestsTakeEverySecretFromASecret(t *testing.T) {
	raw, err := os.ReadFile("../deployments/kubernetes/marquee.yaml")
	if err != nil {
		t.Fatal(err)
	}
	containers := 0
	for i, doc := range bytes.Split(raw, []byte("\n---")) {
		var obj struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []k8sContainer `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		for _, c := range obj.Spec.Template.Spec.Containers {
			containers++
			env := map[string]k8sEnv{}
			for _, e := range c.Env {
				env[e.Name] = e
			}
			for _, name := range secretVariables {
				e, ok := env[name]
				if !ok || e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name == "" {
					t.Errorf("%s %s (%v): %s is not taken from a Secret", obj.Kind, c.Name, c.Args, name)
				}
			}
			if _, ok := env["MARQUEE_DEVELOPMENT"]; ok {
				t.Errorf("%s %s sets MARQUEE_DEVELOPMENT", obj.Kind, c.Name)
			}
		}
	}
	if containers < 4 { // migrate, api, scheduler, worker
		t.Fatalf("found %d containers; the manifest changed shape", containers)
	}
}

// Every compose service built from the image requires each secret from the
// caller's environment (${VAR:?…}): none has a value written in the file.
func TestComposeRequiresEverySecret(t *testing.T) {
	raw, err := os.ReadFile("../deployments/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Build       any               `yaml:"build"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	// A service's own keys override those merged from the anchor (<<), as
	// YAML allows and compose does.
	if err := yaml.UnmarshalWithOptions(raw, &file, yaml.AllowDuplicateMapKey()); err != nil {
		t.Fatal(err)
	}
	required := regexp.MustCompile(`\$\{[A-Z_]+:\?[^}]+\}`)
	marquee := 0
	for name, svc := range file.Services {
		if svc.Build == nil {
			continue
		}
		marquee++
		for _, v := range secretVariables {
			val, ok := svc.Environment[v]
			if !ok || !required.MatchString(val) {
				t.Errorf("service %s: %s = %q, want a required ${VAR:?…} reference", name, v, val)
			}
		}
		for k := range svc.Environment {
			if strings.EqualFold(k, "MARQUEE_DEVELOPMENT") {
				t.Errorf("service %s sets MARQUEE_DEVELOPMENT", name)
			}
		}
	}
	if marquee < 3 { // migrate, api, worker
		t.Fatalf("found %d Marquee services; the file changed shape", marquee)
	}
}
