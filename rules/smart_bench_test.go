package rules

import "testing"

func BenchmarkParseSMART(b *testing.B) {
	cases := []struct{ name, scope string }{
		{"v1", "patient/Observation.read"},
		{"v2", "user/MedicationRequest.cruds"},
		{"wildcard", "system/*.rs"},
		{"query", "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.scope)))
			for b.Loop() {
				if _, err := ParseSMART(c.scope); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "scopes/s")
		})
	}
}
