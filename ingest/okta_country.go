package ingest

// countryCode maps the country of an Okta geographicalContext to its ISO
// 3166-1 alpha-2 code. Okta writes the full English name ("United
// States"); a value that is already two letters is kept as written, and a
// name outside the table gives "", since a wrong country is worse than
// none for geography checks.
func countryCode(name []byte, strs *interner) string {
	if len(name) == 2 && isASCIILetter(name[0]) && isASCIILetter(name[1]) {
		return strs.bytes(name)
	}
	switch string(name) {
	case "United States", "United States of America", "USA":
		return "US"
	case "Canada":
		return "CA"
	case "Mexico":
		return "MX"
	case "Brazil":
		return "BR"
	case "Argentina":
		return "AR"
	case "Chile":
		return "CL"
	case "Colombia":
		return "CO"
	case "Peru":
		return "PE"
	case "United Kingdom", "Great Britain":
		return "GB"
	case "Ireland":
		return "IE"
	case "France":
		return "FR"
	case "Germany":
		return "DE"
	case "Netherlands", "The Netherlands":
		return "NL"
	case "Belgium":
		return "BE"
	case "Luxembourg":
		return "LU"
	case "Switzerland":
		return "CH"
	case "Austria":
		return "AT"
	case "Italy":
		return "IT"
	case "Spain":
		return "ES"
	case "Portugal":
		return "PT"
	case "Denmark":
		return "DK"
	case "Norway":
		return "NO"
	case "Sweden":
		return "SE"
	case "Finland":
		return "FI"
	case "Iceland":
		return "IS"
	case "Poland":
		return "PL"
	case "Czechia", "Czech Republic":
		return "CZ"
	case "Slovakia":
		return "SK"
	case "Hungary":
		return "HU"
	case "Romania":
		return "RO"
	case "Bulgaria":
		return "BG"
	case "Greece":
		return "GR"
	case "Croatia":
		return "HR"
	case "Serbia":
		return "RS"
	case "Slovenia":
		return "SI"
	case "Estonia":
		return "EE"
	case "Latvia":
		return "LV"
	case "Lithuania":
		return "LT"
	case "Ukraine":
		return "UA"
	case "Belarus":
		return "BY"
	case "Russia", "Russian Federation":
		return "RU"
	case "Turkey", "Türkiye":
		return "TR"
	case "Israel":
		return "IL"
	case "Saudi Arabia":
		return "SA"
	case "United Arab Emirates":
		return "AE"
	case "Qatar":
		return "QA"
	case "Egypt":
		return "EG"
	case "Morocco":
		return "MA"
	case "Nigeria":
		return "NG"
	case "Kenya":
		return "KE"
	case "South Africa":
		return "ZA"
	case "India":
		return "IN"
	case "Pakistan":
		return "PK"
	case "Bangladesh":
		return "BD"
	case "China":
		return "CN"
	case "Hong Kong":
		return "HK"
	case "Taiwan":
		return "TW"
	case "Japan":
		return "JP"
	case "South Korea", "Republic of Korea", "Korea, Republic of":
		return "KR"
	case "North Korea":
		return "KP"
	case "Singapore":
		return "SG"
	case "Malaysia":
		return "MY"
	case "Indonesia":
		return "ID"
	case "Thailand":
		return "TH"
	case "Vietnam", "Viet Nam":
		return "VN"
	case "Philippines":
		return "PH"
	case "Australia":
		return "AU"
	case "New Zealand":
		return "NZ"
	case "Iran", "Iran, Islamic Republic of":
		return "IR"
	}
	return ""
}

func isASCIILetter(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}
