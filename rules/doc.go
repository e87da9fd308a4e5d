// Package rules loads and validates scopewatch's configuration and policy:
// sources, store and detector settings, the scope catalog, roles, client
// registrations and route → scope mappings. Errors name the file, line and
// field. The package imports nothing else of scopewatch.
package rules
