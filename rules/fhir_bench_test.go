package rules

import "testing"

func BenchmarkFHIRInteraction(b *testing.B) {
	cases := []struct{ name, method, path string }{
		{"read", "GET", "/fhir/Patient/123"},
		{"vread", "GET", "/fhir/Patient/123/_history/2"},
		{"search", "POST", "/fhir/Observation/_search"},
		{"export", "GET", "/fhir/Group/1/$export"},
		{"metadata", "GET", "/fhir/metadata"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.path)))
			for b.Loop() {
				FHIRInteraction(c.method, c.path, "/fhir")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
		})
	}
}

func BenchmarkHAPIOperation(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		HAPIOperation("HISTORY_INSTANCE")
	}
}
