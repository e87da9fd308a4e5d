package ingest

// countryLookup maps the country a log names to its ISO 3166-1 alpha-2
// code. A value of two ASCII letters that is one of the 249 assigned
// codes (or XK, the code MaxMind and others use for Kosovo) is taken as a
// code, upper-cased. Any other value is a country name ("UK" among them),
// looked up without regard to ASCII case. Empty input gives "" with ok; a value
// that is neither a known code nor a known name gives "" and not ok,
// since a wrong country is worse than none for geography checks. It
// does not allocate.
func countryLookup(name []byte) (code string, ok bool) {
	if len(name) == 0 {
		return "", true
	}
	if len(name) == 2 {
		if code, ok := countryAlpha2(name); ok {
			return code, true
		}
	}
	var buf [64]byte
	if len(name) > len(buf) {
		return "", false
	}
	for i, c := range name {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	code, ok = countryNames[string(buf[:len(name)])]
	return code, ok
}

// countryAlpha2 returns the upper-cased code b when it is an assigned
// ISO 3166-1 alpha-2 code (or XK); ok is false for anything else.
func countryAlpha2(b []byte) (code string, ok bool) {
	if len(b) != 2 || !isASCIILetter(b[0]) || !isASCIILetter(b[1]) {
		return "", false
	}
	i := int((b[0]|0x20)-'a')*26 + int((b[1]|0x20)-'a')
	code = countryCodes[i]
	return code, code != ""
}

// countryCode is countryLookup for callers that only want the code: ""
// when the value is empty or unknown. strs is unused: codes are static
// strings.
func countryCode(name []byte, strs *interner) string {
	code, _ := countryLookup(name)
	return code
}

func isASCIILetter(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// countryCodes holds every code of countryNames at index
// (first letter)*26 + (second letter).
var countryCodes = func() (t [26 * 26]string) {
	for _, code := range countryNames {
		t[int(code[0]-'A')*26+int(code[1]-'A')] = code
	}
	return t
}()

// countryNames maps lower-cased country names to their codes.
//
// It was produced from iso_3166-1.json of the iso-codes project (Debian
// package iso-codes 4.15.0): for each of its 249 entries, the name,
// common_name and official_name fields (and the official name without a
// leading "the"), lower-cased in ASCII only. Alternates were then added
// by hand: the short names MaxMind's GeoIP2/GeoLite2 databases and GeoNames
// give (which Okta writes in geographicalContext.country: "Russia",
// "South Korea", "Vietnam", "Ivory Coast", "Hashemite Kingdom of Jordan",
// "Republic of Lithuania", "Myanmar [Burma]", ...), former names still in
// use ("Turkey", "Czech Republic", "Swaziland", "Macedonia", "Cape
// Verde"), spellings without diacritics ("Cote d'Ivoire", "Curacao",
// "Reunion") or with "&" or "St", and XK for Kosovo. No name maps to two
// codes; ambiguous short forms ("Korea", "Virgin Islands") are left out.
var countryNames = map[string]string{
	// AD
	"andorra":                 "AD",
	"principality of andorra": "AD",
	// AE
	"uae":                  "AE",
	"united arab emirates": "AE",
	// AF
	"afghanistan":                     "AF",
	"islamic republic of afghanistan": "AF",
	// AG
	"antigua & barbuda":   "AG",
	"antigua and barbuda": "AG",
	// AI
	"anguilla": "AI",
	// AL
	"albania":             "AL",
	"republic of albania": "AL",
	// AM
	"armenia":             "AM",
	"republic of armenia": "AM",
	// AO
	"angola":             "AO",
	"republic of angola": "AO",
	// AQ
	"antarctica": "AQ",
	// AR
	"argentina":          "AR",
	"argentine republic": "AR",
	// AS
	"american samoa": "AS",
	// AT
	"austria":             "AT",
	"republic of austria": "AT",
	// AU
	"australia": "AU",
	// AW
	"aruba": "AW",
	// AX
	"aland":         "AX",
	"aland islands": "AX",
	"Åland":         "AX",
	"Åland islands": "AX",
	// AZ
	"azerbaijan":             "AZ",
	"republic of azerbaijan": "AZ",
	// BA
	"bosnia":                             "BA",
	"bosnia & herzegovina":               "BA",
	"bosnia and herzegovina":             "BA",
	"republic of bosnia and herzegovina": "BA",
	// BB
	"barbados": "BB",
	// BD
	"bangladesh":                      "BD",
	"people's republic of bangladesh": "BD",
	// BE
	"belgium":            "BE",
	"kingdom of belgium": "BE",
	// BF
	"burkina faso": "BF",
	// BG
	"bulgaria":             "BG",
	"republic of bulgaria": "BG",
	// BH
	"bahrain":            "BH",
	"kingdom of bahrain": "BH",
	// BI
	"burundi":             "BI",
	"republic of burundi": "BI",
	// BJ
	"benin":             "BJ",
	"republic of benin": "BJ",
	// BL
	"saint barthelemy": "BL",
	"saint barthélemy": "BL",
	"saint-barthélemy": "BL",
	"st barthelemy":    "BL",
	"st. barthélemy":   "BL",
	// BM
	"bermuda": "BM",
	// BN
	"brunei":            "BN",
	"brunei darussalam": "BN",
	// BO
	"bolivia":                          "BO",
	"bolivia (plurinational state of)": "BO",
	"bolivia, plurinational state of":  "BO",
	"plurinational state of bolivia":   "BO",
	// BQ
	"bonaire":                           "BQ",
	"bonaire, saint eustatius and saba": "BQ",
	"bonaire, sint eustatius and saba":  "BQ",
	"bonaire, sint eustatius, and saba": "BQ",
	"caribbean netherlands":             "BQ",
	// BR
	"brazil":                        "BR",
	"federative republic of brazil": "BR",
	// BS
	"bahamas":                     "BS",
	"commonwealth of the bahamas": "BS",
	"the bahamas":                 "BS",
	// BT
	"bhutan":            "BT",
	"kingdom of bhutan": "BT",
	// BV
	"bouvet island": "BV",
	// BW
	"botswana":             "BW",
	"republic of botswana": "BW",
	// BY
	"belarus":             "BY",
	"republic of belarus": "BY",
	// BZ
	"belize": "BZ",
	// CA
	"canada": "CA",
	// CC
	"cocos (keeling) islands": "CC",
	"cocos [keeling] islands": "CC",
	"cocos islands":           "CC",
	// CD
	"congo (drc)":                           "CD",
	"congo (kinshasa)":                      "CD",
	"congo, democratic republic of the":     "CD",
	"congo, the democratic republic of the": "CD",
	"congo-kinshasa":                        "CD",
	"democratic republic of the congo":      "CD",
	"dr congo":                              "CD",
	// CF
	"central african republic": "CF",
	// CG
	"congo":                 "CG",
	"congo (brazzaville)":   "CG",
	"congo republic":        "CG",
	"congo-brazzaville":     "CG",
	"republic of the congo": "CG",
	// CH
	"swiss confederation": "CH",
	"switzerland":         "CH",
	// CI
	"cote d'ivoire":             "CI",
	"cote d’ivoire":             "CI",
	"côte d'ivoire":             "CI",
	"côte d’ivoire":             "CI",
	"ivory coast":               "CI",
	"republic of cote d'ivoire": "CI",
	"republic of côte d'ivoire": "CI",
	// CK
	"cook islands": "CK",
	// CL
	"chile":             "CL",
	"republic of chile": "CL",
	// CM
	"cameroon":             "CM",
	"republic of cameroon": "CM",
	// CN
	"china":                      "CN",
	"mainland china":             "CN",
	"people's republic of china": "CN",
	// CO
	"colombia":             "CO",
	"republic of colombia": "CO",
	// CR
	"costa rica":             "CR",
	"republic of costa rica": "CR",
	// CU
	"cuba":             "CU",
	"republic of cuba": "CU",
	// CV
	"cabo verde":             "CV",
	"cape verde":             "CV",
	"republic of cabo verde": "CV",
	// CW
	"curacao": "CW",
	"curaçao": "CW",
	// CX
	"christmas island": "CX",
	// CY
	"cyprus":             "CY",
	"republic of cyprus": "CY",
	// CZ
	"czech republic": "CZ",
	"czechia":        "CZ",
	// DE
	"federal republic of germany": "DE",
	"germany":                     "DE",
	// DJ
	"djibouti":             "DJ",
	"republic of djibouti": "DJ",
	// DK
	"denmark":            "DK",
	"kingdom of denmark": "DK",
	// DM
	"commonwealth of dominica": "DM",
	"dominica":                 "DM",
	// DO
	"dominican republic": "DO",
	// DZ
	"algeria": "DZ",
	"people's democratic republic of algeria": "DZ",
	// EC
	"ecuador":             "EC",
	"republic of ecuador": "EC",
	// EE
	"estonia":             "EE",
	"republic of estonia": "EE",
	// EG
	"arab republic of egypt": "EG",
	"egypt":                  "EG",
	// EH
	"western sahara": "EH",
	// ER
	"eritrea":              "ER",
	"state of eritrea":     "ER",
	"the state of eritrea": "ER",
	// ES
	"kingdom of spain": "ES",
	"spain":            "ES",
	// ET
	"ethiopia": "ET",
	"federal democratic republic of ethiopia": "ET",
	// FI
	"finland":             "FI",
	"republic of finland": "FI",
	// FJ
	"fiji":             "FJ",
	"republic of fiji": "FJ",
	// FK
	"falkland islands":                  "FK",
	"falkland islands (malvinas)":       "FK",
	"falkland islands [islas malvinas]": "FK",
	// FM
	"federated states of micronesia":   "FM",
	"micronesia":                       "FM",
	"micronesia (federated states of)": "FM",
	"micronesia, federated states of":  "FM",
	// FO
	"faroe islands": "FO",
	// FR
	"france":          "FR",
	"french republic": "FR",
	// GA
	"gabon":             "GA",
	"gabonese republic": "GA",
	// GB
	"britain":        "GB",
	"great britain":  "GB",
	"u.k.":           "GB",
	"uk":             "GB",
	"united kingdom": "GB",
	"united kingdom of great britain and northern ireland": "GB",
	// GD
	"grenada": "GD",
	// GE
	"georgia": "GE",
	// GF
	"french guiana": "GF",
	// GG
	"guernsey": "GG",
	// GH
	"ghana":             "GH",
	"republic of ghana": "GH",
	// GI
	"gibraltar": "GI",
	// GL
	"greenland": "GL",
	// GM
	"gambia":                 "GM",
	"republic of the gambia": "GM",
	"the gambia":             "GM",
	// GN
	"guinea":             "GN",
	"republic of guinea": "GN",
	// GP
	"guadeloupe": "GP",
	// GQ
	"equatorial guinea":             "GQ",
	"republic of equatorial guinea": "GQ",
	// GR
	"greece":            "GR",
	"hellenic republic": "GR",
	// GS
	"south georgia and south sandwich islands":     "GS",
	"south georgia and the south sandwich islands": "GS",
	// GT
	"guatemala":             "GT",
	"republic of guatemala": "GT",
	// GU
	"guam": "GU",
	// GW
	"guinea bissau":             "GW",
	"guinea-bissau":             "GW",
	"republic of guinea-bissau": "GW",
	// GY
	"guyana":             "GY",
	"republic of guyana": "GY",
	// HK
	"hong kong":           "HK",
	"hong kong sar":       "HK",
	"hong kong sar china": "HK",
	"hong kong special administrative region of china": "HK",
	// HM
	"heard and mcdonald islands":        "HM",
	"heard island and mcdonald islands": "HM",
	// HN
	"honduras":             "HN",
	"republic of honduras": "HN",
	// HR
	"croatia":             "HR",
	"republic of croatia": "HR",
	// HT
	"haiti":             "HT",
	"republic of haiti": "HT",
	// HU
	"hungary": "HU",
	// ID
	"indonesia":             "ID",
	"republic of indonesia": "ID",
	// IE
	"ireland":             "IE",
	"republic of ireland": "IE",
	// IL
	"israel":          "IL",
	"state of israel": "IL",
	// IM
	"isle of man": "IM",
	// IN
	"india":             "IN",
	"republic of india": "IN",
	// IO
	"british indian ocean territory": "IO",
	// IQ
	"iraq":             "IQ",
	"republic of iraq": "IQ",
	// IR
	"iran":                      "IR",
	"iran, islamic republic of": "IR",
	"islamic republic of iran":  "IR",
	// IS
	"iceland":             "IS",
	"republic of iceland": "IS",
	// IT
	"italian republic": "IT",
	"italy":            "IT",
	// JE
	"jersey": "JE",
	// JM
	"jamaica": "JM",
	// JO
	"hashemite kingdom of jordan": "JO",
	"jordan":                      "JO",
	// JP
	"japan": "JP",
	// KE
	"kenya":             "KE",
	"republic of kenya": "KE",
	// KG
	"kyrgyz republic": "KG",
	"kyrgyzstan":      "KG",
	// KH
	"cambodia":            "KH",
	"kingdom of cambodia": "KH",
	// KI
	"kiribati":             "KI",
	"republic of kiribati": "KI",
	// KM
	"comores":              "KM",
	"comoros":              "KM",
	"union of the comoros": "KM",
	// KN
	"saint kitts & nevis":   "KN",
	"saint kitts and nevis": "KN",
	"st kitts and nevis":    "KN",
	"st. kitts and nevis":   "KN",
	// KP
	"democratic people's republic of korea": "KP",
	"dprk":                                  "KP",
	"korea (democratic people's republic of)": "KP",
	"korea, democratic people's republic of":  "KP",
	"korea, north":                            "KP",
	"north korea":                             "KP",
	// KR
	"korea (republic of)": "KR",
	"korea, republic of":  "KR",
	"korea, south":        "KR",
	"republic of korea":   "KR",
	"south korea":         "KR",
	// KW
	"kuwait":          "KW",
	"state of kuwait": "KW",
	// KY
	"cayman islands": "KY",
	// KZ
	"kazakhstan":             "KZ",
	"republic of kazakhstan": "KZ",
	// LA
	"lao pdr":                          "LA",
	"lao people's democratic republic": "LA",
	"laos":                             "LA",
	// LB
	"lebanese republic": "LB",
	"lebanon":           "LB",
	// LC
	"saint lucia": "LC",
	"st lucia":    "LC",
	"st. lucia":   "LC",
	// LI
	"liechtenstein":                 "LI",
	"principality of liechtenstein": "LI",
	// LK
	"democratic socialist republic of sri lanka": "LK",
	"sri lanka": "LK",
	// LR
	"liberia":             "LR",
	"republic of liberia": "LR",
	// LS
	"kingdom of lesotho": "LS",
	"lesotho":            "LS",
	// LT
	"lithuania":             "LT",
	"republic of lithuania": "LT",
	// LU
	"grand duchy of luxembourg": "LU",
	"luxembourg":                "LU",
	// LV
	"latvia":             "LV",
	"republic of latvia": "LV",
	// LY
	"libya": "LY",
	// MA
	"kingdom of morocco": "MA",
	"morocco":            "MA",
	// MC
	"monaco":                 "MC",
	"principality of monaco": "MC",
	// MD
	"moldova":              "MD",
	"moldova, republic of": "MD",
	"republic of moldova":  "MD",
	// ME
	"montenegro": "ME",
	// MF
	"saint martin":               "MF",
	"saint martin (french part)": "MF",
	"saint-martin":               "MF",
	"st martin":                  "MF",
	"st. martin":                 "MF",
	// MG
	"madagascar":             "MG",
	"republic of madagascar": "MG",
	// MH
	"marshall islands":                 "MH",
	"republic of the marshall islands": "MH",
	// MK
	"macedonia": "MK",
	"macedonia, the former yugoslav republic of": "MK",
	"north macedonia":                           "MK",
	"north macedonia, republic of":              "MK",
	"republic of north macedonia":               "MK",
	"the former yugoslav republic of macedonia": "MK",
	// ML
	"mali":             "ML",
	"republic of mali": "ML",
	// MM
	"burma":               "MM",
	"myanmar":             "MM",
	"myanmar (burma)":     "MM",
	"myanmar [burma]":     "MM",
	"republic of myanmar": "MM",
	// MN
	"mongolia": "MN",
	// MO
	"macao":     "MO",
	"macao sar": "MO",
	"macao special administrative region of china": "MO",
	"macau":     "MO",
	"macau sar": "MO",
	// MP
	"commonwealth of the northern mariana islands": "MP",
	"northern mariana islands":                     "MP",
	// MQ
	"martinique": "MQ",
	// MR
	"islamic republic of mauritania": "MR",
	"mauritania":                     "MR",
	// MS
	"montserrat": "MS",
	// MT
	"malta":             "MT",
	"republic of malta": "MT",
	// MU
	"mauritius":             "MU",
	"republic of mauritius": "MU",
	// MV
	"maldives":             "MV",
	"republic of maldives": "MV",
	// MW
	"malawi":             "MW",
	"republic of malawi": "MW",
	// MX
	"mexico":                "MX",
	"united mexican states": "MX",
	// MY
	"malaysia": "MY",
	// MZ
	"mozambique":             "MZ",
	"republic of mozambique": "MZ",
	// NA
	"namibia":             "NA",
	"republic of namibia": "NA",
	// NC
	"new caledonia": "NC",
	// NE
	"niger":                 "NE",
	"republic of the niger": "NE",
	// NF
	"norfolk island": "NF",
	// NG
	"federal republic of nigeria": "NG",
	"nigeria":                     "NG",
	// NI
	"nicaragua":             "NI",
	"republic of nicaragua": "NI",
	// NL
	"holland":                    "NL",
	"kingdom of the netherlands": "NL",
	"netherlands":                "NL",
	"the netherlands":            "NL",
	// NO
	"kingdom of norway": "NO",
	"norway":            "NO",
	// NP
	"federal democratic republic of nepal": "NP",
	"nepal":                                "NP",
	// NR
	"nauru":             "NR",
	"republic of nauru": "NR",
	// NU
	"niue": "NU",
	// NZ
	"new zealand": "NZ",
	// OM
	"oman":              "OM",
	"sultanate of oman": "OM",
	// PA
	"panama":             "PA",
	"republic of panama": "PA",
	// PE
	"peru":             "PE",
	"republic of peru": "PE",
	// PF
	"french polynesia": "PF",
	// PG
	"independent state of papua new guinea": "PG",
	"papua new guinea":                      "PG",
	"papua-new guinea":                      "PG",
	// PH
	"philippines":                 "PH",
	"republic of the philippines": "PH",
	// PK
	"islamic republic of pakistan": "PK",
	"pakistan":                     "PK",
	// PL
	"poland":             "PL",
	"republic of poland": "PL",
	// PM
	"saint pierre and miquelon": "PM",
	"st pierre and miquelon":    "PM",
	"st. pierre and miquelon":   "PM",
	// PN
	"pitcairn":         "PN",
	"pitcairn islands": "PN",
	// PR
	"puerto rico": "PR",
	// PS
	"palestine":                       "PS",
	"palestine, state of":             "PS",
	"palestinian territories":         "PS",
	"palestinian territory":           "PS",
	"palestinian territory, occupied": "PS",
	"state of palestine":              "PS",
	"the state of palestine":          "PS",
	// PT
	"portugal":            "PT",
	"portuguese republic": "PT",
	// PW
	"palau":             "PW",
	"republic of palau": "PW",
	// PY
	"paraguay":             "PY",
	"republic of paraguay": "PY",
	// QA
	"qatar":          "QA",
	"state of qatar": "QA",
	// RE
	"reunion": "RE",
	"réunion": "RE",
	// RO
	"romania": "RO",
	// RS
	"republic of serbia": "RS",
	"serbia":             "RS",
	// RU
	"russia":             "RU",
	"russian federation": "RU",
	// RW
	"rwanda":            "RW",
	"rwandese republic": "RW",
	// SA
	"kingdom of saudi arabia": "SA",
	"saudi arabia":            "SA",
	// SB
	"solomon islands": "SB",
	// SC
	"republic of seychelles": "SC",
	"seychelles":             "SC",
	// SD
	"republic of the sudan": "SD",
	"sudan":                 "SD",
	// SE
	"kingdom of sweden": "SE",
	"sweden":            "SE",
	// SG
	"republic of singapore": "SG",
	"singapore":             "SG",
	// SH
	"saint helena": "SH",
	"saint helena, ascension and tristan da cunha": "SH",
	"st helena":  "SH",
	"st. helena": "SH",
	// SI
	"republic of slovenia": "SI",
	"slovenia":             "SI",
	// SJ
	"svalbard & jan mayen":   "SJ",
	"svalbard and jan mayen": "SJ",
	// SK
	"slovak republic": "SK",
	"slovakia":        "SK",
	// SL
	"republic of sierra leone": "SL",
	"sierra leone":             "SL",
	// SM
	"republic of san marino": "SM",
	"san marino":             "SM",
	// SN
	"republic of senegal": "SN",
	"senegal":             "SN",
	// SO
	"federal republic of somalia": "SO",
	"somalia":                     "SO",
	// SR
	"republic of suriname": "SR",
	"suriname":             "SR",
	// SS
	"republic of south sudan": "SS",
	"south sudan":             "SS",
	// ST
	"democratic republic of sao tome and principe": "ST",
	"sao tome & principe":                          "ST",
	"sao tome and principe":                        "ST",
	"são tomé and príncipe":                        "ST",
	// SV
	"el salvador":             "SV",
	"republic of el salvador": "SV",
	// SX
	"sint maarten":              "SX",
	"sint maarten (dutch part)": "SX",
	// SY
	"syria":                "SY",
	"syrian arab republic": "SY",
	// SZ
	"eswatini":             "SZ",
	"eswatini, kingdom of": "SZ",
	"kingdom of eswatini":  "SZ",
	"swaziland":            "SZ",
	// TC
	"turks & caicos islands":   "TC",
	"turks and caicos islands": "TC",
	// TD
	"chad":             "TD",
	"republic of chad": "TD",
	// TF
	"french southern and antarctic lands": "TF",
	"french southern territories":         "TF",
	// TG
	"togo":              "TG",
	"togolese republic": "TG",
	// TH
	"kingdom of thailand": "TH",
	"thailand":            "TH",
	// TJ
	"republic of tajikistan": "TJ",
	"tajikistan":             "TJ",
	// TK
	"tokelau": "TK",
	// TL
	"democratic republic of timor-leste": "TL",
	"east timor":                         "TL",
	"timor-leste":                        "TL",
	// TM
	"turkmenistan": "TM",
	// TN
	"republic of tunisia": "TN",
	"tunisia":             "TN",
	// TO
	"kingdom of tonga": "TO",
	"tonga":            "TO",
	// TR
	"republic of turkey":  "TR",
	"republic of türkiye": "TR",
	"turkey":              "TR",
	"turkiye":             "TR",
	"türkiye":             "TR",
	// TT
	"republic of trinidad and tobago": "TT",
	"trinidad & tobago":               "TT",
	"trinidad and tobago":             "TT",
	// TV
	"tuvalu": "TV",
	// TW
	"taiwan":                    "TW",
	"taiwan, province of china": "TW",
	// TZ
	"tanzania":                     "TZ",
	"tanzania, united republic of": "TZ",
	"united republic of tanzania":  "TZ",
	// UA
	"ukraine": "UA",
	// UG
	"republic of uganda": "UG",
	"uganda":             "UG",
	// UM
	"u.s. minor outlying islands":          "UM",
	"u.s. outlying islands":                "UM",
	"united states minor outlying islands": "UM",
	"us minor outlying islands":            "UM",
	// US
	"u.s.":                     "US",
	"u.s.a.":                   "US",
	"united states":            "US",
	"united states (us)":       "US",
	"united states of america": "US",
	"usa":                      "US",
	// UY
	"eastern republic of uruguay": "UY",
	"uruguay":                     "UY",
	// UZ
	"republic of uzbekistan": "UZ",
	"uzbekistan":             "UZ",
	// VA
	"holy see":                      "VA",
	"holy see (vatican city state)": "VA",
	"vatican":                       "VA",
	"vatican city":                  "VA",
	"vatican city state":            "VA",
	// VC
	"saint vincent and grenadines":     "VC",
	"saint vincent and the grenadines": "VC",
	"st vincent and grenadines":        "VC",
	"st vincent and the grenadines":    "VC",
	"st. vincent and the grenadines":   "VC",
	// VE
	"bolivarian republic of venezuela":   "VE",
	"venezuela":                          "VE",
	"venezuela (bolivarian republic of)": "VE",
	"venezuela, bolivarian republic of":  "VE",
	// VG
	"british virgin islands":   "VG",
	"virgin islands (british)": "VG",
	"virgin islands, british":  "VG",
	// VI
	"u.s. virgin islands":                 "VI",
	"united states virgin islands":        "VI",
	"us virgin islands":                   "VI",
	"virgin islands (u.s.)":               "VI",
	"virgin islands of the united states": "VI",
	"virgin islands, u.s.":                "VI",
	// VN
	"socialist republic of viet nam": "VN",
	"viet nam":                       "VN",
	"vietnam":                        "VN",
	// VU
	"republic of vanuatu": "VU",
	"vanuatu":             "VU",
	// WF
	"wallis & futuna":   "WF",
	"wallis and futuna": "WF",
	// WS
	"independent state of samoa": "WS",
	"samoa":                      "WS",
	// XK
	"kosovo":             "XK",
	"republic of kosovo": "XK",
	// YE
	"republic of yemen": "YE",
	"yemen":             "YE",
	// YT
	"mayotte": "YT",
	// ZA
	"republic of south africa": "ZA",
	"south africa":             "ZA",
	// ZM
	"republic of zambia": "ZM",
	"zambia":             "ZM",
	// ZW
	"republic of zimbabwe": "ZW",
	"zimbabwe":             "ZW",
}
