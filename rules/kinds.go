package rules

// The finding kinds, as stored, in the API and in silences.
const (
	KindBroadRequest     = "broad_request"
	KindClientIDSpray    = "client_id_spray"
	KindImpossibleTravel = "impossible_travel"
	KindStaleSource      = "stale_source"
	KindTokenInURL       = "token_in_url"
	KindUnfamiliarBurst  = "unfamiliar_burst"
	KindUnfamiliarGeo    = "unfamiliar_geo"
	KindUnusedScope      = "unused_scope"
)

// FindingKind is one row of the table of finding kinds: its name and how
// a message names it. Adding a kind is a row here and its detector.
type FindingKind struct {
	Name  string // as stored and in the API
	Title string // how a Slack message or a report names it
}

// kinds is the table, sorted by name.
var kinds = [...]FindingKind{
	{KindBroadRequest, "broad scope request"},
	{KindClientIDSpray, "client-id spray"},
	{KindImpossibleTravel, "impossible travel"},
	{KindStaleSource, "log source stale"},
	{KindTokenInURL, "token in a URL"},
	{KindUnfamiliarBurst, "burst from an unfamiliar network"},
	{KindUnfamiliarGeo, "unfamiliar geography"},
	{KindUnusedScope, "unused scope"},
}

// Kinds returns the table of finding kinds, sorted by name.
func Kinds() []FindingKind { return kinds[:] }

// FindingKinds returns the names of the finding kinds, sorted.
func FindingKinds() []string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Name
	}
	return names
}

// KindTitle returns how a message names the kind name, or "" for a kind
// the table lacks.
func KindTitle(name string) string {
	for _, k := range kinds {
		if k.Name == name {
			return k.Title
		}
	}
	return ""
}
