// Package detect decides: it folds events into per-client usage through a
// store batch (the Accountant), raises findings from them (Detectors), and
// judges, on a sweep, the scopes granted but not used (unused.go, the
// pruning list). It sits between the engine and alert/report; time comes
// from the events themselves or from an injected clock, never from the
// wall.
//
// Each detector is a file and a type behind the detector interface
// (detectors.go): tokenurl.go (token_in_url), probing.go and broad.go
// (broad_request), spray.go (client_id_spray), geo.go (unfamiliar_geo),
// and burst.go (unfamiliar_burst), which judges the networks geo.go
// places. A new finding kind is a row of rules/kinds.go, a detector file,
// and its entry in NewDetectors.
package detect
