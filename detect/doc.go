// Package detect consumes events, folds them into per-client usage through a
// store batch, and derives findings such as scopes granted but never used.
// It sits between ingest and alert; time comes from the events themselves
// or from an injected clock, never from the wall.
package detect
