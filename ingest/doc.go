// Package ingest reads log files and turns their lines into events.
//
// It sits at the start of the flow (ingest → detect → alert): a Source
// yields complete lines with their position (file identity plus the offset
// after the line), and a Parser turns a line into zero or more Events.
// Malformed lines are reported as *ParseError and never stop a source.
package ingest
