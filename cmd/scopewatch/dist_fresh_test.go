package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/alert/slackfake"
	"github.com/scopewatch/scopewatch/detect/geoip/geoiptest"
	"github.com/scopewatch/scopewatch/internal/traffic"
)

// TestDistDashboardImport checks what Grafana's import dialog reads: one
// Prometheus data source input, which the datasource variable starts
// from, and the Grafana version, data source and every panel type the
// dashboard needs.
func TestDistDashboardImport(t *testing.T) {
	b, err := os.ReadFile(distDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Inputs []struct {
			Name, Type, PluginID string
		} `json:"__inputs"`
		Requires []struct {
			Type, ID string
		} `json:"__requires"`
		Templating struct {
			List []struct {
				Type    string `json:"type"`
				Current struct {
					Value json.RawMessage `json:"value"` // an array for multi-value variables
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Fatalf("__inputs = %+v, want one prometheus data source", d.Inputs)
	}
	input := "${" + d.Inputs[0].Name + "}"
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && string(v.Current.Value) != `"`+input+`"` {
			t.Errorf("the datasource variable starts from %q, want the import's %s", v.Current.Value, input)
		}
	}
	need := map[string]bool{"grafana/grafana": false, "datasource/prometheus": false}
	for _, p := range distAllPanels(distLoadDashboard(t).Panels) {
		if p.Type != "row" {
			need["panel/"+p.Type] = false
		}
	}
	for _, r := range d.Requires {
		need[r.Type+"/"+r.ID] = true
	}
	for k, ok := range need {
		if !ok {
			t.Errorf("__requires lacks %s", k)
		}
	}
}

// TestDistDashboardFreshInstall starts the daemon with every feature on
// and nothing read yet, as on the day the package is installed, and
// checks that every dashboard query finds its series: a panel shows 0
// rather than "No data". The only exceptions are panels whose series need
// a log file or a committed event, and which say so in their noValue text.
func TestDistDashboardFreshInstall(t *testing.T) {
	bin := scopewatchBinary(t)
	cfg := distFullConfig(t, t.TempDir())
	d := startGeoDaemon(t, bin, cfg)
	code, body, err := d.get("/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	d.stop(t)
	fams := distExposed(body)

	raw, err := os.ReadFile(distDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var noValue struct {
		Panels []noValuePanel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &noValue); err != nil {
		t.Fatal(err)
	}
	explained := map[string]bool{}
	for _, p := range allNoValue(noValue.Panels) {
		explained[p.Title] = p.FieldConfig.Defaults.NoValue != ""
	}
	var missing []string
	for _, p := range distAllPanels(distLoadDashboard(t).Panels) {
		for _, tg := range p.Targets {
			for _, m := range distMetricRE.FindAllString(tg.Expr, -1) {
				if !distExposes(fams, m) && !explained[p.Title] && !slices.Contains(missing, p.Title+": "+m) {
					missing = append(missing, p.Title+": "+m)
				}
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("panels that show No data on a fresh install (pre-set the series to 0, or give the panel a noValue text):\n\t%s",
			strings.Join(missing, "\n\t"))
	}
}

// distFullConfig writes into dir a configuration with every feature on:
// both sources, GeoIP City and ASN databases, Slack (a fake that checks
// what the real one would) and a scheduled report; it returns its path.
func distFullConfig(t *testing.T, dir string) string {
	t.Helper()
	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules)
	write(t, filepath.Join(dir, "slack-token"), slackTestToken+"\n")
	fake := slackfake.New(t, slackTestToken)
	fake.AddChannel("#phi-access")
	city := filepath.Join(dir, "GeoLite2-City.mmdb")
	asn := filepath.Join(dir, "GeoLite2-ASN.mmdb")
	geoWriteCity(t, city, geoUSNet, geoBRNet)
	if err := geoiptest.WriteASN(asn, []geoiptest.Entry{geoUSNet, geoBRNet}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfg, fmt.Sprintf(geoConfig, dir, city, asn, "1h")+fmt.Sprintf(`alert:
  slack: {token_file: %[1]s/slack-token, api_url: %[2]s, channel: "#phi-access", group_wait: 100ms, group_interval: 1s}
  report: {every: 168h}
`, dir, fake.APIURL()))
	return cfg
}

type noValuePanel struct {
	Title       string `json:"title"`
	FieldConfig struct {
		Defaults struct {
			NoValue string `json:"noValue"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Panels []noValuePanel `json:"panels"`
}

func allNoValue(ps []noValuePanel) []noValuePanel {
	var all []noValuePanel
	for _, p := range ps {
		all = append(all, p)
		all = append(all, allNoValue(p.Panels)...)
	}
	return all
}
