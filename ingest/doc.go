// Package ingest reads log files and turns their lines into events.
//
// It sits at the start of the flow (ingest → detect → alert): a Source
// yields complete lines with their position (file identity plus the offset
// after the line), and a Parser turns a line into zero or more Events. Every
// parser NewParser returns sits behind the wrapper layer (wrap.go), which
// takes off what containers, compose, syslog and the journal put around a
// line, once for every format. Which formats there are, and what each
// name means to the rest of the program, is the table in formats.go.
// Each line has one outcome: events, a Skip
// with a bounded reason, or a *ParseError; malformed lines never stop a
// source.
package ingest
